"""Redis stopped: signing up and logging in still work, and no signup is lost.

The test runs its own redis-server (the broker and the limiter's storage), kills it with a
real signal, and starts it again on the same port.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import create_app
from core.demo import redis_command
from subscribers.models import SignupRequest
from tests.conftest import ROOT
from tests.conftest import SmtpSink
from tests.conftest import _pings
from tests.conftest import celery_worker_command
from tests.conftest import free_port
from tests.conftest import settings_env
from tests.conftest import wait_until
from tests.helpers import csrf_token
from tests.test_subscribe import fresh
from tests.test_subscribe import signup_form


class OwnRedis:
    """A redis-server of this test's own, which it can kill and start again on one port."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            redis_command(self.port, self.folder), stdout=subprocess.DEVNULL
        )
        wait_until(lambda: _pings(redis_lib.Redis(port=self.port)), timeout=10)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=10)


@pytest.fixture
def own_settings(settings: dict[str, Any], own_redis: OwnRedis) -> dict[str, Any]:
    return {**settings, "REDIS_URL": own_redis.url(0), "RATELIMIT_STORAGE_URL": own_redis.url(1)}


@pytest.fixture
def own_worker(own_settings: dict[str, Any], tmp_path: Path) -> Iterator[None]:
    """A worker with its beat, on the test's own Redis."""
    log = tmp_path / "worker.log"
    command = celery_worker_command(
        "redis-down", "--pool=solo", "--beat", "--schedule", str(tmp_path / "beat")
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=settings_env(own_settings), stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: process.poll() is not None or b"ready." in log.read_bytes(), timeout=60)
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _waiting(db: Session) -> int:
    count = db.scalar(select(func.count()).select_from(SignupRequest)) or 0
    db.rollback()
    return count


def test_signup_and_login_survive_redis_down_and_the_signup_is_sent_later(
    app: Flask,
    db: Session,
    own_settings: dict[str, Any],
    own_redis: OwnRedis,
    own_worker: None,
    smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis killed: /subscribe answers the usual page and /editor/login its form (not 500),
    the limiter warns it counts in memory; Redis back: the signup's confirmation arrives."""
    web = create_app({**own_settings, "TESTING": True}).test_client()
    form = signup_form(web, "late@example.com")
    login = {"csrf_token": csrf_token(web, "/editor/login"), "email": "x@example.com",
             "password": "wrong password"}  # fmt: skip
    own_redis.kill()
    with caplog.at_level(logging.WARNING):
        response = web.post("/subscribe", data=form)
        refused = web.post("/editor/login", data=login)
    assert response.status_code == 200 and "请查收邮件" in response.get_data(as_text=True)
    assert refused.status_code == 200 and "邮箱或密码不正确" in refused.get_data(as_text=True)
    assert "falling back to in-memory" in caplog.text
    assert _waiting(db) == 1 and fresh(db, "late@example.com") is None
    own_redis.start()
    [message] = wait_until(lambda: smtp_sink.to("late@example.com"), timeout=120)
    assert "请确认您的订阅" in str(message["Subject"])
    assert _waiting(db) == 0
    assert fresh(db, "late@example.com").status == "pending"  # type: ignore[union-attr]
