"""Shared arrangements of the campaign tests: the seed issue made ready, readers in every
edition, starting a campaign, waiting for it, and checking the sink against the ledger."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import redis as redis_lib
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import tasks
from campaigns.models import Campaign
from campaigns.models import Delivery
from campaigns.throttle import Throttle
from issues import store
from issues.models import Issue
from mailer.segments import Segment
from mailer.segments import all_segments
from subscribers.models import Subscriber
from subscribers.models import Suppression
from subscribers.service import email_hash
from tests.helpers import SEED

NAMES = ["王小明", "李华", "Ada Lovelace", "张伟", "Grace Hopper", "陈静", None]
DOMAINS = ["qq.com", "163.com", "gmail.com", "example.org", "corp.example.cn"]


def ready_seed(app: Flask, db: Session) -> Issue:
    """The real issue, stored and marked ready."""
    result = store.store_issue(db, store.parse(SEED.read_bytes(), "seed.txt", app.config))
    db.commit()
    issue = store.set_status(db, result.issue.id, "ready")
    db.commit()
    return issue


def reader(
    address: str, edition: Segment, status: str = "active", name: str | None = None
) -> Subscriber:
    """A subscriber of ``edition`` (not yet added to a session)."""
    return Subscriber(
        email=address,
        email_hash=email_hash(address),
        name=name,
        locale=edition.locale,
        status=status,
        format=edition.format,
        topics=edition.topics,
        confirm_nonce=secrets.token_hex(8),
        link_nonce=secrets.token_hex(8),
    )


def add_readers(
    db: Session, count: int, config: Any, status: str = "active", prefix: str = "r"
) -> list[Subscriber]:
    """``count`` readers spread over every edition (topics × format × language)."""
    editions = all_segments(config["TOPICS"])
    readers = [
        reader(
            f"{prefix}{index}@{DOMAINS[index % len(DOMAINS)]}",
            editions[index % len(editions)],
            status,
            NAMES[index % len(NAMES)],
        )
        for index in range(count)
    ]
    db.add_all(readers)
    db.commit()
    return readers


def add_bystanders(db: Session, config: Any) -> list[str]:
    """Readers who must receive nothing: unsubscribed, pending, and active but blocked."""
    left = add_readers(db, 5, config, status="unsubscribed", prefix="left")
    pending = add_readers(db, 5, config, status="pending", prefix="pending")
    blocked = add_readers(db, 3, config, prefix="blocked")
    for reader in blocked:
        db.add(Suppression(email_hash=reader.email_hash, reason="manual"))
    db.commit()
    return [reader.email for reader in left + pending + blocked]


@contextmanager
def on_own_broker(
    settings: dict[str, Any], database: int, **overrides: Any
) -> Iterator[tuple[Flask, dict[str, Any]]]:
    """An app and settings on Redis database ``database`` of their own (emptied), so that only
    the workers a test starts with these settings take its tasks, not the session's worker
    (which runs with the default settings and would send some of the campaign its way)."""
    from core import create_app

    broker = settings["REDIS_URL"].rsplit("/", 1)[0] + f"/{database}"
    redis_lib.Redis.from_url(broker).flushdb()
    mine = {**settings, "REDIS_URL": broker, **overrides}
    application = create_app({**mine, "TESTING": True})
    try:
        yield application, mine
    finally:
        application.extensions["db"].kw["bind"].dispose()


def send_now(app: Flask, db: Session, issue_id: int, **options: Any) -> int:
    """Create a campaign that starts at once, as the console does; its id."""
    with app.app_context():
        campaign = control.create(
            db,
            issue_id,
            control.Editor("editor@newsletter.test", is_admin=True),
            app.config,
            tasks.enqueue_start,
            **options,
        )
        db.commit()
        return campaign.id


def planned_here(app: Flask, db: Session, issue_id: int) -> int:
    """A campaign created and planned in this process, no batch enqueued, for a test that
    runs its batches itself (``send.send_batch``); its id."""
    with app.app_context():
        editor = control.Editor("editor@newsletter.test", is_admin=True)
        campaign = control.create(db, issue_id, editor, app.config, lambda _id: None)
        db.commit()
        control.start(db, campaign.id, None, app.config)
        db.commit()
        return campaign.id


def own_throttle(app: Flask) -> Throttle:
    """A throttle in a Redis namespace of its own, for batches a test runs itself."""
    client = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    return Throttle(client, app.config, namespace=f"test-{secrets.token_hex(8)}")


def status_of(db: Session, campaign_id: int) -> str:
    db.expire_all()
    status = db.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    db.rollback()
    return str(status)


def wait_for_status(db: Session, campaign_id: int, wanted: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_of(db, campaign_id)
        if status == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"campaign {campaign_id} is {status_of(db, campaign_id)!r}, not {wanted!r}, after "
        f"{timeout} s; ledger: {ledger(db, campaign_id)}"
    )


def ledger(db: Session, campaign_id: int) -> dict[str, int]:
    rows = db.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    )
    counts = {str(status): int(number) for status, number in rows}
    db.rollback()
    return counts


def received(messages: list[EmailMessage]) -> Counter[str]:
    """How many messages each address received."""
    return Counter(
        str(message["To"]).rsplit("<", 1)[-1].rstrip(">").lower() for message in messages
    )


def start_worker(
    settings: dict[str, Any],
    log: Path,
    *,
    concurrency: int = 1,
    beat: bool = True,
    **overrides: Any,
) -> subprocess.Popen[bytes]:
    """A worker process of its own (with the beat, by default), for tests that kill or
    reconfigure it; ``overrides`` change settings for this worker only."""
    from tests.conftest import ROOT
    from tests.conftest import celery_worker_command
    from tests.conftest import settings_env

    command = celery_worker_command(
        "campaign",
        "--pool=prefork" if concurrency > 1 else "--pool=solo",
        f"--concurrency={concurrency}",
        *(["--beat", f"--schedule={log.with_suffix('.beat')}"] if beat else []),
    )
    mark_log(log)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=settings_env({**settings, **overrides}),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes().split(b"campaign-test-start")[-1]:
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                "worker did not start:\n" + log.read_text(errors="replace")[-3000:]
            )
        time.sleep(0.1)
    return process


def kill_worker(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Kill the worker and every process of its group (pool children, beat) with ``sig``."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    process.wait(timeout=30)


def mark_log(log: Path) -> None:
    """Mark where the next worker's output starts, so its own "ready." is looked for."""
    with log.open("ab") as output:
        output.write(b"\ncampaign-test-start\n")
