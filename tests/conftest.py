"""Fixtures: real services only. SQLite and PostgreSQL, a real Redis, a real Celery worker
process, a real SMTP peer (aiosmtpd) that records messages and can refuse recipients.

Every test that uses ``app`` runs twice, with ids ``sqlite`` and ``postgresql``. When
PostgreSQL cannot be reached the PostgreSQL half is skipped with the reason — except in CI
(``CI`` set), where that is a failure, since CI must prove both.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core import create_app
from core import migrate
from core.db import Base
from core.demo import redis_command
from core.models import import_all

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s: {getattr(predicate, '__doc__', predicate)}")


# --- Redis -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server: NEWSLETTER_TEST_REDIS_URL if given, else one started for this run."""
    given = os.environ.get("NEWSLETTER_TEST_REDIS_URL")
    if given:
        yield given.rstrip("/")
        return
    port, folder = free_port(), tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(redis_command(port, folder), stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    client = redis_lib.Redis.from_url(url)
    wait_until(lambda: _pings(client), timeout=10)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.ConnectionError:
        return False


@pytest.fixture(name="redis")
def redis_client(redis_dbs: dict[str, str]) -> Iterator[redis_lib.Redis]:
    """A client of the real Redis server, on the database the rate limiter uses."""
    client = redis_lib.Redis.from_url(redis_dbs["limits"])
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_dbs(redis_url: str) -> dict[str, str]:
    """Separate Redis databases for the broker and the rate limiter, emptied once per run."""
    urls = {"broker": f"{redis_url}/14", "limits": f"{redis_url}/15"}
    for url in urls.values():
        redis_lib.Redis.from_url(url).flushdb()
    return urls


# --- Databases ---------------------------------------------------------------------------


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database for this run, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        migrate.upgrade(url)
        yield url
        return
    yield from _postgres_database()


def _postgres_database() -> Iterator[str]:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        reason = (
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {str(error).splitlines()[0]}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"newsletter_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def empty_tables(url: str) -> None:
    """Remove every row, keeping the schema (much faster than migrating again).

    The session's worker runs the beat every second; its tick can hold one table the
    TRUNCATE needs while waiting for another the TRUNCATE holds. PostgreSQL then aborts one
    of the two (seen in CI once), and the TRUNCATE is simply tried again.
    """
    import_all()
    engine = create_engine(url)
    tables = list(reversed(Base.metadata.sorted_tables))
    try:
        for attempt in range(5):
            try:
                with engine.begin() as connection:
                    if url.startswith("postgresql"):
                        names = ", ".join(f'"{table.name}"' for table in tables)
                        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                    else:
                        for table in tables:
                            connection.execute(table.delete())
                return
            except OperationalError as error:
                if "deadlock detected" not in str(error) or attempt == 4:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()


# --- SMTP sink ---------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """An SMTP server that keeps what it receives and refuses the recipients it is told to.

    It counts the connections made to it (``connections``), so a test can prove that a batch
    reuses one, and can refuse new connections outright (``refuse_connections``), so the relay
    looks down to a client.
    """

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    # The MAIL FROM options (SMTPUTF8, BODY=…) of each received message, in order.
    mail_options: list[list[str]] = field(default_factory=list)
    refusals: dict[str, tuple[int, str]] = field(default_factory=dict)
    data_refusals: dict[str, tuple[int, str]] = field(default_factory=dict)
    data_delays: dict[str, float] = field(default_factory=dict)
    connections: int = 0
    connection_refusal: int | None = None
    connection_refusal_reply: str = "4.3.2 Service not available, closing"
    sender_refusal: tuple[int, str] | None = None
    # Offer RFC 2920 pipelining, as Postfix and most relays do; a test turns it off to see
    # the client talk in lock-step to a relay without it.
    pipelining: bool = True
    # Offer SMTPUTF8 (RFC 6531); a test turns it off to meet a relay without it.
    smtputf8: bool = True
    # Recipients whose refusal is followed by closing the connection, as 421 means.
    closing_refusals: set[str] = field(default_factory=set)
    # Transactions whose RCPT TO had already arrived when MAIL FROM was answered: pipelined.
    pipelined: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def opened(self) -> int | None:
        """Count a new connection; the code to refuse it with, or None to serve it."""
        with self.lock:
            self.connections += 1
            return self.connection_refusal

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            pipelining = self.pipelining
            smtputf8 = self.smtputf8
        if not smtputf8:
            responses = [line for line in responses if line != "250-SMTPUTF8"]
        # aiosmtpd reads one command line at a time, so pipelined commands work as sent.
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if pipelining else responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        # What the client sent after MAIL FROM without waiting is already in the reader's buffer.
        waiting = bytes(getattr(server._reader, "_buffer", b""))
        with self.lock:
            refusal = self.sender_refusal
            self.pipelined += b"RCPT TO" in waiting.upper()
        if refusal is not None:
            return f"{refusal[0]} {refusal[1]}"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def refuse_senders(self, code: int | None, reply: str = "") -> None:
        """Answer every MAIL FROM with ``code`` (our own sender refused); None accepts."""
        with self.lock:
            self.sender_refusal = None if code is None else (code, reply)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            refusal = self.refusals.get(address.lower())
            closing = address.lower() in self.closing_refusals
        if refusal is not None:
            code, reply = refusal
            if closing:
                # The reply is written first; the connection closes on the next loop turn.
                asyncio.get_running_loop().call_soon(server.transport.close)
            return f"{code} {reply}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            refusal = next(
                (
                    self.data_refusals[r.lower()]
                    for r in envelope.rcpt_tos
                    if r.lower() in self.data_refusals
                ),
                None,
            )
        if refusal is not None and refusal[0] == 0:
            # The connection drops after the whole message arrived, before any reply.
            server.transport.abort()
            return "451 never seen"
        if refusal is not None:
            return f"{refusal[0]} {refusal[1]}"
        with self.lock:
            delay = max(
                (self.data_delays.get(r.lower(), 0.0) for r in envelope.rcpt_tos), default=0.0
            )
        if delay:
            # A slow relay: the reply to DATA comes only after ``delay`` seconds.
            await asyncio.sleep(delay)
        with self.lock:
            self.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            self.mail_options.append(list(envelope.mail_options))
        return "250 2.0.0 Ok: queued as SINK"

    def refuse(self, address: str, code: int, reply: str, close: bool = False) -> None:
        """Answer RCPT TO for ``address`` with ``code`` (4xx temporary, 5xx permanent), and
        with ``close`` hang up after it, as a relay answering 421 does."""
        with self.lock:
            self.refusals[address.lower()] = (code, reply)
            if close:
                self.closing_refusals.add(address.lower())

    def refuse_data(self, address: str, code: int, reply: str = "") -> None:
        """Answer DATA of messages to ``address`` with ``code``; 0 drops the connection instead."""
        with self.lock:
            self.data_refusals[address.lower()] = (code, reply)

    def delay_data(self, address: str, seconds: float) -> None:
        """Answer DATA of messages to ``address`` only after ``seconds`` (a slow relay)."""
        with self.lock:
            self.data_delays[address.lower()] = seconds

    def refuse_connections(
        self, code: int | None, reply: str = "4.3.2 Service not available, closing"
    ) -> None:
        """Greet new connections with ``code`` (421: not available) and ``reply`` and close
        them; None serves."""
        with self.lock:
            self.connection_refusal = code
            self.connection_refusal_reply = reply

    def reset(self) -> None:
        with self.lock:
            self.sender_refusal = None
            self.messages.clear()
            self.mail_options.clear()
            self.refusals.clear()
            self.data_refusals.clear()
            self.data_delays.clear()
            self.connections = 0
            self.connection_refusal = None
            self.pipelining = True
            self.smtputf8 = True
            self.closing_refusals.clear()
            self.pipelined = 0

    def parsed(self) -> list[EmailMessage]:
        """Every received message, parsed."""
        with self.lock:
            raw = [content for _, _, content in self.messages]
        return [BytesParser(policy=policy.default).parsebytes(content) for content in raw]  # type: ignore[misc]

    def to(self, address: str) -> list[EmailMessage]:
        """The messages whose envelope named ``address``."""
        with self.lock:
            raw = [content for _, rcpts, content in self.messages if address in rcpts]
        return [BytesParser(policy=policy.default).parsebytes(content) for content in raw]  # type: ignore[misc]


class SinkServer(SMTP):
    """aiosmtpd's SMTP server, telling the sink of each connection (Mailman's testing/mta.py)."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(sink, **kwargs)
        self.sink = sink
        self.refused: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The sink has no STARTTLS, so each call is a new connection, never an upgraded one.
        self.refused = self.sink.opened()
        if self.refused is None:
            super().connection_made(transport)
            return
        # A server that will not serve greets with the refusal and closes (RFC 5321 3.1); no
        # session is started, so there is nothing for connection_lost to end.
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(f"{self.refused} {self.sink.connection_refusal_reply}\r\n".encode())
        transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self.refused is None:
            super().connection_lost(error)


class SinkController(Controller):
    """The aiosmtpd controller, serving each connection with a SinkServer."""

    def factory(self) -> SinkServer:
        return SinkServer(self.handler, **self.SMTP_kwargs)


@pytest.fixture(scope="session")
def smtp_sink_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    controller = SinkController(sink, hostname=sink.host, port=sink.port, enable_SMTPUTF8=True)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def smtp_sink(smtp_sink_server: SmtpSink) -> SmtpSink:
    """The SMTP sink, emptied and with no refusals, for this test."""
    smtp_sink_server.reset()
    return smtp_sink_server


# --- Application -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_dbs: dict[str, str], smtp_sink_server: SmtpSink
) -> dict[str, Any]:
    """One configuration, shared by the test's app and the worker process."""
    return {
        "ENV": "production",
        "SECRET_KEY": "test-secret-key-" + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_dbs["broker"],
        "RATELIMIT_STORAGE_URL": redis_dbs["limits"],
        "SMTP_HOST": smtp_sink_server.host,
        "SMTP_PORT": smtp_sink_server.port,
        "SMTP_TIMEOUT": 10,
        "RETRY_BACKOFF_SECONDS": 1,
        "BASE_URL": "http://newsletter.test",
        "MAIL_FROM": "newsletter@newsletter.test",
        "MESSAGE_ID_DOMAIN": "newsletter.test",
        # Campaign sends: a throttle that does not bind, and quick recovery for crash tests.
        "SEND_RATE": 100_000,
        "SEND_CLAIM_LEASE_SECONDS": 3,
        "SCHEDULER_SECONDS": 1,
    }


@pytest.fixture
def app(settings: dict[str, Any], redis_dbs: dict[str, str]) -> Iterator[Flask]:
    """The app on an empty database. No app context is left pushed: each request makes its own,
    as in production, so nothing cached on ``g`` leaks from one request to the next."""
    empty_tables(settings["DATABASE_URL"])
    redis_lib.Redis.from_url(redis_dbs["limits"]).flushdb()
    application = create_app({**settings, "TESTING": True})
    yield application
    application.extensions["db"].kw["bind"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A database session of the test's own, to arrange data and check outcomes."""
    session: Session = app.extensions["db"]()
    yield session
    session.close()


# --- Celery worker -----------------------------------------------------------------------


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSLETTER_")}
    for key, value in settings.items():
        env[f"NEWSLETTER_{key}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def celery_worker_command(name: str, *options: str) -> list[str]:
    """``celery -A worker worker`` with a unique host name and the quiet options tests use."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker",
        "worker",
        *options,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
        f"--hostname={name}-{uuid.uuid4().hex[:8]}@%h",
    ]


@pytest.fixture(scope="session")
def worker_process(
    settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery -A worker worker`` process against the real broker and database."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    command = celery_worker_command("test", "--pool=solo")
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=settings_env(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: process.poll() is not None or b"ready." in log.read_bytes(), timeout=60)
        if process.poll() is not None:
            pytest.fail(
                "the Celery worker did not start:\n" + log.read_text(errors="replace")[-3000:]
            )
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def celery_worker(worker_process: subprocess.Popen[bytes], app: Flask) -> subprocess.Popen[bytes]:
    """The running worker, checked alive for this test."""
    assert worker_process.poll() is None, "the Celery worker process has died"
    return worker_process


# --- Browser -----------------------------------------------------------------------------

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveServer:
    url: str
    app: Flask


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app served over real HTTP on a free local port, for the browser."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Chromium (the Debian package) driven by Playwright; a failure in CI if missing."""
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM} (Debian package chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page (own cookies), phone-sized by default: 375 × 740."""
    context = chromium.new_context(viewport={"width": 375, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing overflows)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )
