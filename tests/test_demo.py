"""`make demo ONCE=1` is the newcomer's first command: its main job must run end to end and clean up."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from email import message_from_bytes
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core import demo
from core.demo import BOUNCED
from core.demo import LEAVERS
from core.demo import READER_DOMAIN
from mailer.segments import all_segments
from tests.conftest import ROOT
from tests.conftest import settings_env


def _processes_mentioning(text: str) -> list[str]:
    listing = subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in listing.splitlines() if text in line and "ps -eo" not in line]


def test_demo_once_runs_the_main_job_and_leaves_nothing_running(tmp_path: Path) -> None:
    """The demo starts every service, delivers the test and confirmation emails, imports, sends
    the sample issue to every reader of all 28 editions, exits 0, stops all."""
    result = subprocess.run(
        [sys.executable, "-m", "core.demo", "--once", "--port", "0", "--dir", str(tmp_path)],
        cwd=ROOT, env=settings_env({}), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "400\t2026-05\tdraft\t8 articles" in result.stdout
    assert "Imported 6 new subscribers" in result.stdout
    assert "confirmation email to reader@example.org captured" in result.stdout
    assert "Issue 400 is ready to send and public in the archive at" in result.stdout
    assert "subscribers by status: 62 active, 1 bounced, 1 pending, 3 unsubscribed" in result.stdout
    assert re.search(
        r"^campaign \d+ of issue 400: done, 62 sent in 28 editions; 62 messages captured",
        result.stdout,
        re.MULTILINE,
    ), result.stdout[-3000:]
    editions = dict(re.findall(r"^    (\S+/\S+/\S+) +(\d+) sent$", result.stdout, re.MULTILINE))
    assert set(editions) == {
        segment.key for segment in all_segments(["policy", "companies", "data"])
    }
    assert sum(map(int, editions.values())) == 62
    assert min(map(int, editions.values())) >= 2
    assert "400\t2026-05\tsent\t8 articles" in result.stdout
    captured = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(captured) == 2 + 62
    assert b"reader@example.org" in captured[1].read_bytes()
    # The send: one message to each of 62 addresses, none to a reader who left or bounced,
    # nor to the reader whose signup is still pending.
    recipients = [
        parseaddr(message_from_bytes(path.read_bytes())["To"])[1] for path in captured[2:]
    ]
    assert len(set(recipients)) == 62
    absent = {f"{local}@{READER_DOMAIN}" for _, local in [*LEAVERS, BOUNCED]} | {
        "reader@example.org"
    }
    assert not absent & set(recipients)
    assert "every process it started has stopped" in result.stdout
    assert _processes_mentioning(str(tmp_path)) == []


def test_demo_refuses_a_server_that_is_not_its_own(
    settings: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program holds the web port (taken after the free-port check): the demo says so
    plainly and does not mistake that program for its web server."""
    monkeypatch.setattr(demo, "VAR", tmp_path)
    (tmp_path / "log").mkdir()
    squatter = ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    port = squatter.server_address[1]
    env = {
        **settings_env(settings),
        "NEWSLETTER_INSTANCE_TOKEN": "this-run",
        "PYTHONUNBUFFERED": "1",
    }
    stack = demo.Stack()
    try:
        with pytest.raises(demo.DemoError) as raised:
            demo.start_web(stack, env, port)
    finally:
        stack.stop()
        squatter.shutdown()
    message = str(raised.value)
    assert f"another program took port {port}" in message and "Nothing was sent" in message
    assert _Impostor.asked and not demo.answers_as(port, "this-run")


class _Impostor(BaseHTTPRequestHandler):
    """Another instance on the port: it answers /healthz "ok", without our run's token."""

    asked = False

    def do_GET(self) -> None:
        type(self).asked = True
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        pass
