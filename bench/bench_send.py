"""How fast a campaign sends the seed issue, end to end, against the SMTP wire's own ceiling.

For each row (DKIM off, then DKIM on with an RSA 2048 key) it makes a fresh database with N
active readers spread over every edition, starts WORKERS Celery worker processes on a private
Redis, and sends the seed issue through the real path (plan, frozen editions, claims, ledger,
throttle) to Postfix's ``smtp-sink``. Delivered is what the sink counted (``-c``), not what the
workers attempted. In the same run, ``smtp-source`` pushes as many messages of the same
average size over as many SMTP sessions into the same sink: that is the ceiling. Each is
measured on a quiet machine: the readers' table is vacuumed before the send, the ceiling is
measured once the send's database is dropped, and each waits for the CPUs to be idle (a
ceiling measured beside the autovacuum of the ledger just sent came out a third low).

While a send runs, the campaign's progress JSON is fetched by a logged-in client in this
process (Flask's test client: the view and its queries, not an HTTP server), and the peak RSS
(VmHWM) of every worker process is read before it stops. A row counts only if the ledger
says every reader was sent and the sink received exactly N messages (a duplicate would
inflate the rate), and the ceiling only if the sink received all of smtp-source's. The CPU
each group of processes used is printed per message, with "other": the rest of the
machine's total (the kernel's network work, processes that exited during the send).

Run: .venv/bin/python bench/bench_send.py, with N= (default 100000), DB=postgresql|sqlite,
WORKERS= (default 2), CONCURRENCY= (pool processes per worker, default 2; one SMTP session
and one batch at a time each), DKIM=both|off|on, and PROFILE=<file prefix> to record one worker's pool
process with py-spy (collapsed stacks, one file per row). The last lines are JSON, one a row.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import tasks
from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from campaigns.plan import thaw
from core import create_app
from core import migrate
from core.db import utcnow
from core.demo import redis_command
from issues import store
from issues.models import Issue
from mailer.message import issue_mail
from mailer.segments import Recipient
from mailer.segments import all_segments
from subscribers import links
from subscribers.models import Subscriber
from subscribers.service import email_hash
from tests.conftest import celery_worker_command
from tests.conftest import settings_env
from tests.helpers import log_in
from tests.helpers import make_editor

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "000_ad8e7aff219fd574.txt"
POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SINK = Path("/usr/sbin/smtp-sink")
SOURCE = Path("/usr/sbin/smtp-source")
MAIL_FROM = "newsletter@newsletter.test"
TOPICS = ["policy", "companies", "data"]
INSERT_CHUNK = 10_000

SURNAMES = [
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("罗", "luo"),
    ("欧阳", "ouyang"),
]
GIVEN = [
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("秀英", "xiuying"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("晓东", "xiaodong"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀兰", "xiulan"),
    ("婷", "ting"),
]
FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Oskar",
    "Priya",
    "Rafael",
    "Sofia",
    "Tomás",
    "Zoë",
]
LAST = [
    "Novak",
    "Okafor",
    "Silva",
    "Larsen",
    "Müller",
    "Rossi",
    "García",
    "Dubois",
    "Kowalski",
    "Nguyen",
    "O'Brien",
    "Smith",
    "Tanaka",
    "Kim",
    "Haddad",
    "Petrov",
    "Jensen",
    "Costa",
    "Schmidt",
    "Van der Berg",
]
WEBMAIL = [
    "qq.com",
    "163.com",
    "126.com",
    "sina.com",
    "sohu.com",
    "foxmail.com",
    "aliyun.com",
    "139.com",
    "yeah.net",
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
    "web.de",
    "orange.fr",
    "libero.it",
    "mail.ru",
]
COMPANY_WORDS = [
    "xinke",
    "huawei-partner",
    "chipworks",
    "silicon",
    "fabline",
    "wafer",
    "lithon",
    "semitech",
    "zhongxin",
    "guoxin",
    "haiguang",
    "changjiang",
    "nanotek",
    "photon",
    "quantix",
    "epitaxy",
    "dieshop",
    "packaging",
    "testlab",
    "foundry",
]
COMPANY_TLDS = [".com", ".com.cn", ".cn", ".net", ".de", ".co.jp", ".eu", ".org", ".io", ".tw"]


@dataclass(frozen=True)
class Options:
    messages: int
    db: str
    workers: int
    concurrency: int
    dkim_rows: tuple[bool, ...]
    profile: str | None

    @classmethod
    def from_env(cls) -> Options:
        rows = {"off": (False,), "on": (True,), "both": (False, True)}[
            os.environ.get("DKIM", "both")
        ]
        return cls(
            messages=int(os.environ.get("N", "100000")),
            db=os.environ.get("DB", "postgresql"),
            workers=int(os.environ.get("WORKERS", "2")),
            concurrency=int(os.environ.get("CONCURRENCY", "2")),
            dkim_rows=rows,
            profile=os.environ.get("PROFILE") or None,
        )


@dataclass
class Row:
    """One measured send, with the keys issue 10 asks for (and the progress page's latency)."""

    messages: int
    delivered: int
    seconds: float
    msgs_per_s: float
    ceiling_msgs_per_s: float
    ratio: float
    plan_s: float
    freeze_s: float
    peak_worker_rss_mb: float
    workers: int
    sessions: int
    avg_msg_bytes: int
    dkim: bool
    db: str
    progress_median_ms: float | None = None
    rss_mb_by_process: list[float] = field(default_factory=list)
    cpu_ms_per_message: dict[str, float] = field(default_factory=dict)


# --- Tools and services -------------------------------------------------------------------


def ensure_postfix_tools() -> None:
    """Postfix's smtp-sink and smtp-source, installed from the Debian package if missing.
    Installing the package does not start the Postfix daemon here (policy-rc.d denies it
    in containers), and the benchmark never starts it."""
    if SINK.exists() and SOURCE.exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private, throw-away Redis server; its URL."""
    port = free_port()
    process = subprocess.Popen(redis_command(port, folder), stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Sink:
    """``smtp-sink -c``: it rewrites a counter line (``… mesg=N``) on stdout after every
    message, session and QUIT, so the last ``mesg=`` in its output is what it received."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.output = folder / "smtp-sink.out"
        user = pwd.getpwuid(os.getuid()).pw_name
        command = [str(SINK), "-c", "-u", user, f"127.0.0.1:{self.port}", "1000"]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def received(self) -> int:
        found = re.findall(rb"mesg=(\d+)", self.output.read_bytes())
        return int(found[-1]) if found else 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, migrated database (a PostgreSQL database dropped afterwards, or a SQLite file)."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        migrate.upgrade(url)
        yield url
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def dkim_key(folder: Path) -> Path:
    """A fresh RSA 2048 private key in PEM, as a DKIM signer would use."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def settings_for(
    url: str, redis_url: str, sink: Sink, key: Path | None, sessions: int = 4
) -> dict[str, Any]:
    """One configuration for the workers and this process; a throttle that does not bind,
    and as many batches at once (one SMTP session each) as there are pool processes."""
    settings: dict[str, Any] = {
        "SEND_PARALLEL_BATCHES": sessions,
        "ENV": "production",
        "SECRET_KEY": "bench-" + secrets.token_hex(16),
        "DATABASE_URL": url,
        "REDIS_URL": f"{redis_url}/0",
        "RATELIMIT_STORAGE_URL": f"{redis_url}/1",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": sink.port,
        "BASE_URL": "http://newsletter.test",
        "MAIL_FROM": MAIL_FROM,
        "MESSAGE_ID_DOMAIN": "newsletter.test",
        "SEND_RATE": 1_000_000,
        "TOPICS": TOPICS,
    }
    if key is not None:
        settings |= {"DKIM_DOMAIN": "newsletter.test", "DKIM_PRIVATE_KEY_PATH": str(key)}
    return settings


# --- Arranging the audience and the issue -------------------------------------------------


def reader_values(count: int) -> Iterator[dict[str, Any]]:
    """``count`` readers over every edition: Chinese and Latin names, many domains."""
    chooser = random.Random(10)
    editions = all_segments(TOPICS)
    companies = [word + tld for word in COMPANY_WORDS for tld in COMPANY_TLDS]
    now = utcnow()
    for index in range(count):
        edition = editions[index % len(editions)]
        if chooser.random() < 0.6:
            (surname, s), (given, g) = chooser.choice(SURNAMES), chooser.choice(GIVEN)
            name, local = surname + given, f"{g}.{s}"
        else:
            first, last = chooser.choice(FIRST), chooser.choice(LAST)
            name, local = f"{first} {last}", f"{first}.{last}".lower().replace(" ", "")
            local = local.encode("ascii", "ignore").decode().replace("'", "")
        domain = chooser.choice(WEBMAIL if chooser.random() < 0.6 else companies)
        address = f"{local}{index}@{domain}"
        yield {
            "email": address,
            "email_hash": email_hash(address),
            "name": None if index % 20 == 0 else name,
            "locale": edition.locale,
            "status": "active",
            "format": edition.format,
            "topics": edition.topics,
            "member": index % 10 == 0,
            "created_at": now,
            "confirmed_at": now,
            "confirm_nonce": secrets.token_hex(8),
            "link_nonce": secrets.token_hex(8),
        }


def add_readers(db_session: Session, count: int) -> float:
    """Insert the readers in chunks of executemany (one statement per chunk); seconds taken."""
    started = time.perf_counter()
    chunk: list[dict[str, Any]] = []
    for values in reader_values(count):
        chunk.append(values)
        if len(chunk) == INSERT_CHUNK:
            db_session.execute(insert(Subscriber), chunk)
            chunk = []
    if chunk:
        db_session.execute(insert(Subscriber), chunk)
    db_session.commit()
    # A live subscriber table has statistics and has been vacuumed; without statistics
    # PostgreSQL plans the campaign's audience queries for an empty table (nested loops over
    # the ledger), and without the vacuum the autovacuum daemon does it (100,000 inserts are
    # past its threshold) in the middle of the measured send.
    bind = db_session.get_bind()
    if bind.dialect.name == "postgresql":
        settle = create_engine(bind.url, isolation_level="AUTOCOMMIT")
        with settle.connect() as connection:
            connection.execute(text("VACUUM ANALYZE subscriber"))
        settle.dispose()
    else:
        db_session.execute(text("ANALYZE subscriber"))
        db_session.commit()
    return time.perf_counter() - started


def wait_for_quiet(limit: float = 60.0, busy_percent: float = 20.0) -> None:
    """Wait (up to ``limit`` seconds) until the machine's CPUs are mostly idle: the send and
    the ceiling are each measured on a quiet machine, not beside the autovacuum of the last
    row's ledger or a worker still exiting."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if psutil.cpu_percent(interval=1.0) < busy_percent:
            return
    print(f"  (the machine was still busy after {limit:.0f} s; measuring anyway)", flush=True)


def ready_seed(app: Flask, db_session: Session) -> int:
    """The seed issue stored and marked ready; its id."""
    result = store.store_issue(db_session, store.parse(SEED.read_bytes(), "seed.txt", app.config))
    db_session.commit()
    issue = store.set_status(db_session, result.issue.id, "ready")
    db_session.commit()
    return issue.id


# --- Workers ------------------------------------------------------------------------------


def start_workers(
    settings: dict[str, Any], count: int, concurrency: int, folder: Path
) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes of ``concurrency`` pool processes (each one SMTP session
    at a time); the first also runs the beat."""
    workers = []
    for index in range(count):
        log = folder / f"worker{index}.log"
        command = celery_worker_command(
            f"bench{index}", "--pool=prefork", f"--concurrency={concurrency}"
        )
        if index == 0:
            command += ["--beat", f"--schedule={folder / 'beat-schedule'}"]
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=settings_env(settings),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    for index, process in enumerate(workers):
        wait_ready(process, folder / f"worker{index}.log")
    return workers


def wait_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("worker did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.1)


def worker_processes(workers: list[subprocess.Popen[bytes]]) -> list[psutil.Process]:
    """Every worker process: each main process and its pool children."""
    found = []
    for worker in workers:
        main = psutil.Process(worker.pid)
        found += [main, *main.children(recursive=True)]
    return found


def peak_rss_mb(process: psutil.Process) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MB."""
    with contextlib.suppress(OSError, psutil.Error):
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def cpu_seconds(groups: dict[str, list[psutil.Process]]) -> dict[str, dict[int, float]]:
    """User plus system CPU seconds used so far by each process of each group, by pid; the
    system part alone under "<group> system"."""
    used: dict[str, dict[int, float]] = {}
    for name, processes in groups.items():
        used[name], used[f"{name} system"] = {}, {}
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                used[name][process.pid] = times.user + times.system
                used[f"{name} system"][process.pid] = times.system
    return used


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds each group used between the two readings. A process that started in
    between counts from zero; one that exited in between (an autovacuum worker) cannot be
    read any more, which the machine's own total, beside the groups, shows."""
    return {
        name: sum(seconds - before.get(name, {}).get(pid, 0.0) for pid, seconds in pids.items())
        for name, pids in after.items()
    }


def machine_cpu_seconds() -> float:
    """CPU seconds used by the whole machine so far, every process and the kernel's own."""
    times = psutil.cpu_times()
    # Not idle, iowait or steal (time not ours), nor guest (already counted in user).
    busy = ("user", "nice", "system", "irq", "softirq")
    return float(sum(getattr(times, name, 0.0) for name in busy))


def postgres_processes() -> list[psutil.Process]:
    """Every process of the PostgreSQL server: the backends (only the benchmark's are busy
    while it runs), the WAL writer, the checkpointer and the autovacuum workers."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if line.startswith("postgres:") or process.info["name"] == "postgres":
            found.append(process)
    return found


def start_profile(workers: list[subprocess.Popen[bytes]], output: str) -> subprocess.Popen[bytes]:
    """py-spy recording the last worker's pool process, as collapsed stacks (the first worker
    also runs the beat, whose process would come first among its children)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    child = psutil.Process(workers[-1].pid).children()[0]
    command = [
        spy,
        "record",
        "--pid",
        str(child.pid),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        output,
        "--nonblocking",
        # PROFILE_IDLE=1 also samples waiting (SMTP replies, sleeps), to see where time goes.
        *(["--idle"] if os.environ.get("PROFILE_IDLE") else []),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


# --- The send -----------------------------------------------------------------------------


class ProgressProbe(threading.Thread):
    """Fetches the progress JSON as the editor's page does, and keeps each latency."""

    def __init__(self, app: Flask, campaign_id: int) -> None:
        super().__init__(daemon=True)
        self.client = app.test_client()
        log_in(self.client, "bench@newsletter.test")
        self.url = f"/editor/campaigns/{campaign_id}/progress.json"
        self.latencies: list[float] = []
        self.failure: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            started = time.perf_counter()
            response = self.client.get(self.url)
            if response.status_code != 200:
                # Kept for median_ms: an exception here would end only this thread, silently.
                self.failure = f"{self.url} answered {response.status_code}"
                return
            self.latencies.append(time.perf_counter() - started)

    def median_ms(self) -> float | None:
        """The median latency; the benchmark fails if the page ever failed."""
        self.done.set()
        self.join(timeout=10)
        if self.failure is not None:
            raise SystemExit(f"the progress page failed during the send: {self.failure}")
        return round(statistics.median(self.latencies) * 1000, 1) if self.latencies else None


def start_campaign(app: Flask, db_session: Session, issue_id: int) -> int:
    """Create a campaign that starts at once, as the console does; its id."""
    editor = control.Editor("bench@newsletter.test", is_admin=True)
    campaign = control.create(db_session, issue_id, editor, app.config, tasks.enqueue_start)
    db_session.commit()
    return campaign.id


def wait_until_done(db_session: Session, campaign_id: int, timeout: float) -> Campaign:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db_session.expire_all()
        campaign = db_session.get(Campaign, campaign_id)
        assert campaign is not None
        if campaign.status == "done":
            return campaign
        if campaign.status not in ("scheduled", "running"):
            raise SystemExit(
                f"campaign {campaign_id} is {campaign.status}: {campaign.paused_reason}"
            )
        db_session.rollback()
        time.sleep(0.05)
    raise SystemExit(f"campaign {campaign_id} not done after {timeout:.0f} s")


def check_every_reader_once(
    db_session: Session, campaign_id: int, readers: int, delivered: int
) -> None:
    """The figure counts only a send that reached every reader once: the ledger says each
    was sent, and the sink received exactly that many (a duplicate would inflate the rate)."""
    statuses = dict(
        db_session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status)
        ).all()
    )
    db_session.rollback()
    if statuses != {"sent": readers} or delivered != readers:
        raise SystemExit(
            f"not every reader got the issue once: the ledger says {statuses}, "
            f"the sink received {delivered} of {readers}"
        )


def average_message_bytes(app: Flask, db_session: Session, campaign_id: int) -> int:
    """The mean size of the messages sent: one built per edition, weighted by its readers."""
    number = db_session.scalar(
        select(Issue.number)
        .join(Campaign, Campaign.issue_id == Issue.id)
        .where(Campaign.id == campaign_id)
    )
    total = weight = 0
    counts = db_session.execute(
        select(Delivery.segment_id, func.count(), func.min(Delivery.subscriber_id))
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.segment_id)
    )
    for segment_id, count, subscriber_id in counts.all():
        segment = db_session.get(CampaignSegment, segment_id)
        reader = db_session.get(Subscriber, subscriber_id)
        assert segment is not None and reader is not None
        recipient = Recipient(
            reader.email,
            reader.name,
            reader.locale,
            links.unsubscribe_url(reader),
            links.preferences_url(reader),
        )
        mail = issue_mail(thaw(segment, int(number or 0)), app.config)
        total += len(mail.message(recipient, "<bench@newsletter.test>").as_bytes()) * count
        weight += count
    db_session.rollback()
    return round(total / weight)


def ceiling(sink: Sink, messages: int, sessions: int, size: int) -> float:
    """Messages per second smtp-source gets into the sink over ``sessions`` sessions."""
    before = sink.received()
    command = [
        str(SOURCE),
        "-d",
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-l",
        str(size),
        "-f",
        MAIL_FROM,
        "-t",
        "reader@example.org",
        f"127.0.0.1:{sink.port}",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    time.sleep(0.3)
    received = sink.received() - before
    if received != messages:
        raise SystemExit(f"smtp-source sent {messages} messages, the sink counted {received}")
    return received / seconds


def measure(options: Options, dkim: bool, redis_url: str, sink: Sink, folder: Path) -> Row:
    """One row: a fresh database, the readers, the workers, the send, then the ceiling."""
    with fresh_database(options.db, folder) as url:
        settings = settings_for(
            url,
            redis_url,
            sink,
            dkim_key(folder) if dkim else None,
            options.workers * options.concurrency,
        )
        redis.Redis.from_url(redis_url).flushall()
        app = create_app(settings)
        try:
            row = send_and_measure(app, options, settings, dkim, sink, folder)
        finally:
            app.extensions["db"].kw["bind"].dispose()
    # The ceiling once the send's database is gone (its ledger's autovacuum with it).
    wait_for_quiet()
    top = ceiling(sink, options.messages, row.sessions, row.avg_msg_bytes)
    row.ceiling_msgs_per_s = round(top, 1)
    row.ratio = round(row.msgs_per_s / top, 3)
    return row


def send_and_measure(
    app: Flask, options: Options, settings: dict[str, Any], dkim: bool, sink: Sink, folder: Path
) -> Row:
    with app.app_context():
        db_session: Session = app.extensions["db"]()
        inserted = add_readers(db_session, options.messages)
        print(f"  {options.messages} readers inserted in {inserted:.1f} s", flush=True)
        issue_id = ready_seed(app, db_session)
        make_editor(db_session, "bench@newsletter.test", "admin")
        workers = start_workers(settings, options.workers, options.concurrency, folder)
        profile = None
        if options.profile:
            profile = start_profile(
                workers, f"{options.profile}.dkim-{'on' if dkim else 'off'}.txt"
            )
        groups = {
            "workers": worker_processes(workers),
            "postgresql": postgres_processes(),
            "sink": [psutil.Process(sink.process.pid)],
            "redis": [
                process for process in psutil.Process().children() if "redis" in process.name()
            ],
            "bench": [psutil.Process()],
        }
        wait_for_quiet()
        try:
            cpu_before = cpu_seconds(groups)
            machine_before = machine_cpu_seconds()
            before = sink.received()
            started = time.perf_counter()
            campaign_id = start_campaign(app, db_session, issue_id)
            probe = ProgressProbe(app, campaign_id)
            probe.start()
            campaign = wait_until_done(db_session, campaign_id, 120 + options.messages / 50)
            seconds = time.perf_counter() - started
            latency = probe.median_ms()
            time.sleep(0.3)
            delivered = sink.received() - before
            groups["postgresql"] = postgres_processes()
            used = cpu_used(cpu_before, cpu_seconds(groups))
            used["other"] = (
                machine_cpu_seconds()
                - machine_before
                - sum(seconds for name, seconds in used.items() if not name.endswith(" system"))
            )
            rss = [round(peak_rss_mb(process), 1) for process in worker_processes(workers)]
        finally:
            if profile is not None:
                profile.send_signal(signal.SIGINT)
                profile.wait(timeout=60)
            stop_workers(workers)
        check_every_reader_once(db_session, campaign_id, options.messages, delivered)
        plan_s, freeze_s = campaign.plan_seconds or 0.0, campaign.freeze_seconds or 0.0
        size = average_message_bytes(app, db_session, campaign_id)
        db_session.close()
    sessions = min(int(app.config["SEND_PARALLEL_BATCHES"]), options.workers * options.concurrency)
    rate = delivered / seconds
    return Row(
        messages=options.messages,
        delivered=delivered,
        seconds=round(seconds, 2),
        msgs_per_s=round(rate, 1),
        ceiling_msgs_per_s=0.0,  # measured by the caller, once this database is dropped
        ratio=0.0,
        plan_s=plan_s,
        freeze_s=freeze_s,
        peak_worker_rss_mb=max(rss),
        workers=options.workers,
        sessions=sessions,
        avg_msg_bytes=size,
        dkim=dkim,
        db=options.db,
        progress_median_ms=latency,
        rss_mb_by_process=rss,
        cpu_ms_per_message={
            name: round(seconds * 1000 / max(delivered, 1), 3) for name, seconds in used.items()
        },
    )


# --- Report -------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    heads = [
        "dkim",
        "messages",
        "delivered",
        "seconds",
        "msgs/s",
        "ceiling/s",
        "ratio",
        "plan s",
        "freeze s",
        "peak RSS MB",
        "progress ms",
        "avg bytes",
        "sessions",
    ]
    lines = [heads] + [
        [
            "on" if r.dkim else "off",
            str(r.messages),
            str(r.delivered),
            f"{r.seconds:.1f}",
            f"{r.msgs_per_s:,.0f}",
            f"{r.ceiling_msgs_per_s:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.plan_s:.2f}",
            f"{r.freeze_s:.2f}",
            f"{r.peak_worker_rss_mb:.0f}",
            "-" if r.progress_median_ms is None else f"{r.progress_median_ms:.0f}",
            f"{r.avg_msg_bytes:,}",
            str(r.sessions),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def main() -> None:
    options = Options.from_env()
    ensure_postfix_tools()
    print(
        f"bench_send: {options.messages} readers, {options.db}, {options.workers} workers "
        f"of {options.concurrency} processes, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-send-") as name, redis_server(Path(name)) as url:
        folder = Path(name)
        sink = Sink(folder)
        try:
            for dkim in options.dkim_rows:
                print(f"- DKIM {'on' if dkim else 'off'}", flush=True)
                rows.append(measure(options, dkim, url, sink, folder))
        finally:
            sink.stop()
    print(table(rows))
    print(
        "peak RSS per worker process (MB): "
        + "; ".join(f"dkim {'on' if r.dkim else 'off'}: {r.rss_mb_by_process}" for r in rows)
    )
    for row in rows:
        ms = row.cpu_ms_per_message
        cpu = ", ".join(
            f"{name} {value:.2f}"
            + (f" ({ms[name + ' system']:.2f} in the kernel)" if name + " system" in ms else "")
            for name, value in ms.items()
            if not name.endswith(" system")
        )
        print(f"CPU ms per delivered message, dkim {'on' if row.dkim else 'off'}: {cpu}")
    for row in rows:
        values = asdict(row)
        values.pop("rss_mb_by_process")
        print(json.dumps(values))


if __name__ == "__main__":
    main()
