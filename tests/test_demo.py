"""`make demo ONCE=1` is the newcomer's first command: its main job must run end to end and clean up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.conftest import settings_env


def _processes_mentioning(text: str) -> list[str]:
    listing = subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in listing.splitlines() if text in line and "ps -eo" not in line]


def test_demo_once_runs_the_main_job_and_leaves_nothing_running(tmp_path: Path) -> None:
    """The demo starts every service, delivers the test and confirmation emails, imports, exits 0, stops all."""
    result = subprocess.run(
        [sys.executable, "-m", "core.demo", "--once", "--port", "0", "--dir", str(tmp_path)],
        cwd=ROOT, env=settings_env({}), capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "400\t2026-05\tdraft\t8 articles" in result.stdout
    assert "Imported 6 new subscribers" in result.stdout
    assert "confirmation email to reader@example.org captured" in result.stdout
    captured = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(captured) == 2
    assert b"reader@example.org" in captured[1].read_bytes()
    assert "every process it started has stopped" in result.stdout
    assert _processes_mentioning(str(tmp_path)) == []
