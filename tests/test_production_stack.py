"""The production web stack as configured: Debian's nginx with deploy/nginx.conf in front of
gunicorn with deploy/gunicorn.conf.py (the command docker-compose.yml gives web), on the test
database, against clients that send their requests slowly; and the old way beside it.

nginx runs as a foreground subprocess on a temporary prefix; the only changes to its file are
the ports and the folder it serves files from, each checked to occur exactly once.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import yaml

from core import create_app
from core import migrate
from tests.conftest import free_port
from tests.conftest import settings_env
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
# The command the image ran before nginx stood in front of it (issue 13, point 3).
OLD_COMMAND = ["gunicorn", "--workers", "3", "web:app"]
SLOW_CLIENTS = 50
# A normal page that reads the database: the web archive's list of issues.
PAGE = "/issues/"


def nginx_binary() -> str:
    """The nginx binary (Debian package nginx); a failure in CI if missing, else a skip."""
    found = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if found is None:
        reason = "nginx is not installed (Debian package nginx; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


# --- Processes ---------------------------------------------------------------------------


def start(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A process of its own session (so it is stopped with all its children), output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def answers(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    """Whether the server on ``port`` answers HTTP yet (a failure if it has exited)."""
    if process.poll() is not None:
        pytest.fail(f"{process.args!r} exited:\n" + log.read_text(errors="replace")[-3000:])
    return get(port, "/static/css/site.css", timeout=1).status is not None


@contextmanager
def gunicorn(
    command: list[str], port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` (gunicorn … web:app) run by this Python, bound to a local test port."""
    assert command[0] == "gunicorn" and command[-1] == "web:app"
    bind = ["--bind", f"127.0.0.1:{port}"]
    process = start([sys.executable, "-m", *command[:-1], *bind, command[-1]], log, env)
    try:
        wait_until(lambda: answers(port, process, log), timeout=60)
        yield process
    finally:
        stop(process)


def render_nginx_conf(prefix: Path, port: int, upstream_port: int) -> Path:
    """deploy/nginx.conf with test ports and files served from ``prefix`` (as the image lays them out)."""
    site = prefix / "srv"
    site.mkdir()
    (site / "static").symlink_to(ROOT / "static")
    (site / "errors").symlink_to(ROOT / "deploy" / "errors")
    text = NGINX_CONF.read_text()
    for production, test in (
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("server web:8000;", f"server 127.0.0.1:{upstream_port};"),
        ("root /srv/newsletter;", f"root {site};"),
    ):
        assert text.count(production) == 1, f"deploy/nginx.conf no longer has {production!r} once"
        text = text.replace(production, test)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


@contextmanager
def nginx(prefix: Path, port: int, upstream_port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The real nginx in the foreground on ``port``, passing requests to ``upstream_port``."""
    binary = nginx_binary()
    conf = render_nginx_conf(prefix, port, upstream_port)
    # The image's workers run as www-data. As root here, they stay root instead: no other
    # user could reach the test's private temporary folders.
    globals_ = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    command = [binary, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr", "-g", globals_]
    log = prefix / "nginx.log"
    process = start(command, log)
    try:
        wait_until(lambda: answers(port, process, log), timeout=20)
        yield process
    finally:
        stop(process)


@dataclass
class Stack:
    port: int
    gunicorn_port: int
    log: Path


@pytest.fixture(scope="module")
def stack(settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx and gunicorn as docker-compose.yml runs them, on the test database and Redis."""
    web = COMPOSE["services"]["web"]
    trusted = re.fullmatch(
        r"\$\{NEWSLETTER_TRUSTED_PROXIES:-(\d)\}", web["environment"]["NEWSLETTER_TRUSTED_PROXIES"]
    )
    assert trusted, "web's NEWSLETTER_TRUSTED_PROXIES has no default"
    overrides = {"TRUSTED_PROXIES": int(trusted.group(1)), "LOGIN_RATE_LIMIT": "3 per minute"}
    port, gunicorn_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with ExitStack() as processes:
        env = settings_env({**settings, **overrides})
        processes.enter_context(gunicorn(web["command"], gunicorn_port, env, log))
        processes.enter_context(nginx(tmp_path_factory.mktemp("nginx"), port, gunicorn_port))
        yield Stack(port, gunicorn_port, log)


# --- Clients -----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int | None
    seconds: float
    headers: dict[str, str]
    body: str


def get(
    port: int,
    path: str,
    timeout: float,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str = "127.0.0.1",
) -> Reply:
    """One request on a new connection; ``status`` is None when nothing came within ``timeout``."""
    began = time.monotonic()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        connection.request(
            method, path, body=body, headers={"Host": "newsletter.test", **(headers or {})}
        )
        response = connection.getresponse()
        content = response.read().decode(errors="replace")
        return Reply(
            response.status, time.monotonic() - began, dict(response.getheaders()), content
        )
    except (TimeoutError, ConnectionError):
        return Reply(None, time.monotonic() - began, {}, "")
    finally:
        connection.close()


class SlowClients:
    """Clients that open a request and then send it one byte at a time, never finishing."""

    def __init__(self, port: int, count: int, part: str = "headers") -> None:
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        opening = b"GET /issues/ HTTP/1.1\r\nHost: newsletter.test\r\n"
        if part == "body":
            opening = (
                b"POST /subscribe HTTP/1.1\r\nHost: newsletter.test\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
            )
        for sock in self.sockets:
            sock.sendall(opening)
        self.trickle = b"X-Slow: a\r\n" if part == "headers" else b"a"
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)

    def __enter__(self) -> SlowClients:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()

    def _drip(self) -> None:
        index = 0
        while not self.done.wait(0.2):
            byte = self.trickle[index % len(self.trickle) : index % len(self.trickle) + 1]
            for sock in self.sockets:
                try:
                    sock.send(byte)
                except OSError:
                    continue
            index += 1

    def held(self) -> int:
        """How many connections the server still holds open (not closed, nothing answered)."""
        readable, _, _ = select.select(self.sockets, [], [], 0)
        return len(self.sockets) - len(readable)


# --- Tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["headers", "body"])
def test_readers_are_answered_while_50_slow_clients_hold_connections(
    stack: Stack, part: str
) -> None:
    """With 50 clients trickling their request into nginx, normal page views are answered at once."""
    with SlowClients(stack.port, SLOW_CLIENTS, part) as attack:
        time.sleep(1.0)
        replies = [get(stack.port, PAGE, timeout=5) for _ in range(20)]
        held = attack.held()
    seconds = [reply.seconds for reply in replies]
    print(
        f"\n{part}: {held} slow clients held; 20 page views, median {statistics.median(seconds):.3f} s,"
        f" slowest {max(seconds):.3f} s"
    )
    assert [reply.status for reply in replies] == [200] * 20
    assert max(seconds) < 2.0
    assert held == SLOW_CLIENTS, "nginx dropped slow clients instead of holding them"


def test_the_old_command_stalls_under_the_same_attack(
    redis_dbs: dict[str, str], tmp_path: Path
) -> None:
    """Bare ``gunicorn --workers 3 web:app`` facing clients itself stops answering during the attack."""
    database = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(database)
    settings = {"SECRET_KEY": "k", "DATABASE_URL": database, "REDIS_URL": redis_dbs["broker"]}
    port = free_port()
    command = [*OLD_COMMAND[:-1], "--no-control-socket", OLD_COMMAND[-1]]
    with gunicorn(command, port, settings_env(settings), tmp_path / "gunicorn.log"):
        assert get(port, PAGE, timeout=5).status == 200
        with SlowClients(port, SLOW_CLIENTS):
            time.sleep(0.5)
            stalled = get(port, PAGE, timeout=3)
        assert stalled.status is None, "bare sync gunicorn answered during the attack"


def test_the_rate_limit_counts_each_readers_own_address(
    stack: Stack, redis: redis_lib.Redis
) -> None:
    """Through nginx the login limit is per client address, and a made-up X-Forwarded-For does not dodge it."""
    redis.flushdb()
    cookie, token = _login_form(stack.port)
    statuses = [
        _post_login(stack.port, cookie, token, "127.0.0.2", forged=f"203.0.113.{attempt}")
        for attempt in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert _post_login(stack.port, cookie, token, "127.0.0.3", forged=None) == 200


def _login_form(port: int) -> tuple[str, str]:
    reply = get(port, "/editor/login", timeout=5)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', reply.body)
    assert reply.status == 200 and token
    return reply.headers["Set-Cookie"].split(";", 1)[0], token.group(1)


def _post_login(port: int, cookie: str, token: str, source: str, forged: str | None) -> int | None:
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    if forged:
        headers["X-Forwarded-For"] = forged
    body = f"csrf_token={token}&email=nobody%40example.org&password=wrong".encode()
    return get(port, "/editor/login", 5, "POST", headers, body, source).status


def test_nginx_serves_static_files_and_its_own_error_pages(tmp_path: Path) -> None:
    """Without the app, nginx sends the static files, refuses a body over the app's limit and says the site is down, in both languages."""
    port = free_port()
    limit = create_app({"SECRET_KEY": "k", "DATABASE_URL": "sqlite://"}).config[
        "MAX_CONTENT_LENGTH"
    ]
    assert f"client_max_body_size {limit};" in NGINX_CONF.read_text()
    with nginx(tmp_path, port, free_port()):
        css = get(port, "/static/css/site.css", timeout=5)
        assert css.status == 200 and css.headers["Content-Type"] == "text/css; charset=utf-8"
        assert css.body == (ROOT / "static" / "css" / "site.css").read_text()
        large = get(
            port, "/editor/subscribers/import", 5, "POST", {"Content-Length": str(limit + 1)}
        )
        assert (
            large.status == 413
            and "文件太大" in large.body
            and "The file is too large" in large.body
        )
        down = get(port, PAGE, timeout=5)
        assert down.status == 502
        assert "网站暂时无法访问" in down.body and "The site is not answering" in down.body
