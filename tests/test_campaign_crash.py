"""Crashes during a campaign: workers killed with SIGKILL, Redis emptied, a kill while
planning. The ledger is the truth: every reader ends with exactly one delivery sent, and the
only messages sent twice are those in flight when a worker died (at most SEND_RECORD_EVERY
per killed worker process), each resent with the same Message-ID."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import Delivery
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import kill_worker
from tests.campaign_helpers import ledger
from tests.campaign_helpers import on_own_broker
from tests.campaign_helpers import ready_seed
from tests.campaign_helpers import send_now
from tests.campaign_helpers import start_worker
from tests.campaign_helpers import status_of
from tests.campaign_helpers import wait_for_status
from tests.conftest import SmtpSink

RECORD_EVERY = 10


@pytest.fixture
def own_broker(settings: dict[str, Any], app: Flask) -> Iterator[tuple[Flask, dict[str, Any]]]:
    """An app and settings on a Redis database of their own, so that only this test's
    workers (not the session's) take its tasks."""
    with on_own_broker(settings, 12, SEND_RECORD_EVERY=RECORD_EVERY) as own:
        yield own


def _sink_count(sink: SmtpSink) -> int:
    with sink.lock:
        return len(sink.messages)


def _wait_for_sink(sink: SmtpSink, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _sink_count(sink) < count:
        assert time.monotonic() < deadline, f"only {_sink_count(sink)} of {count} messages arrived"
        time.sleep(0.02)


def _check_exactly_once(db: Session, campaign_id: int, sink: SmtpSink, bound: int) -> int:
    """Every planned reader got the message; duplicates are within ``bound`` and carry the
    same Message-ID as the first copy. Returns the number of duplicates."""
    counts = ledger(db, campaign_id)
    planned = sum(counts.values())
    assert counts == {"sent": planned}, counts
    with sink.lock:
        copies = [(rcpts[0].lower(), content) for _, rcpts, content in sink.messages]
    per_address = Counter(address for address, _ in copies)
    readers = set(
        db.scalars(select(Delivery.subscriber_id).where(Delivery.campaign_id == campaign_id))
    )
    assert len(per_address) == planned == len(readers)
    duplicates = sum(number - 1 for number in per_address.values())
    print(f"\nduplicates after the crashes: {duplicates} (bound {bound})")
    assert duplicates <= bound
    ids: dict[str, set[str]] = {}
    for address, content in copies:
        message = BytesParser(policy=policy.default).parsebytes(content)
        ids.setdefault(address, set()).add(str(message["Message-ID"]))
    assert all(len(found) == 1 for found in ids.values())
    return duplicates


def test_three_sigkills_during_a_campaign_lose_nobody(
    own_broker: tuple[Flask, dict[str, Any]], db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A campaign of 5,000: the worker is killed with SIGKILL three times and restarted."""
    app, settings = own_broker
    issue = ready_seed(app, db)
    add_readers(db, 5000, app.config)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        campaign_id = send_now(app, db, issue.id)
        for threshold in (800, 2000, 3200):
            _wait_for_sink(smtp_sink, threshold)
            kill_worker(worker)
            worker = start_worker(settings, log)
        wait_for_status(db, campaign_id, "done", timeout=240)
    finally:
        kill_worker(worker)
    _check_exactly_once(db, campaign_id, smtp_sink, bound=3 * RECORD_EVERY)


def test_redis_flushed_mid_campaign_loses_nobody(
    own_broker: tuple[Flask, dict[str, Any]], db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Redis loses every queued task (FLUSHALL) in the middle of a campaign of 2,000."""
    app, settings = own_broker
    issue = ready_seed(app, db)
    add_readers(db, 2000, app.config)
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        campaign_id = send_now(app, db, issue.id)
        _wait_for_sink(smtp_sink, 500)
        redis_lib.Redis.from_url(settings["REDIS_URL"]).flushall()
        wait_for_status(db, campaign_id, "done", timeout=240)
    finally:
        kill_worker(worker)
    # No process died, so nothing was in flight unrecorded: nobody gets two.
    assert _check_exactly_once(db, campaign_id, smtp_sink, bound=0) == 0


def test_sigkill_while_planning_leaves_the_whole_plan_or_none(
    own_broker: tuple[Flask, dict[str, Any]], db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The worker dies while it plans a campaign of 3,000; a new worker sends it whole."""
    app, settings = own_broker
    issue = ready_seed(app, db)
    add_readers(db, 3000, app.config)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        campaign_id = send_now(app, db, issue.id)
        deadline = time.monotonic() + 60
        while f"campaign {campaign_id}: planning".encode() not in log.read_bytes():
            assert time.monotonic() < deadline, "the worker never started planning"
            time.sleep(0.005)
        kill_worker(worker)
        planned = db.scalar(
            select(func.count(Delivery.id)).where(Delivery.campaign_id == campaign_id)
        )
        status = status_of(db, campaign_id)
        # All or nothing: the plan and the status change commit together.
        assert (planned, status) in ((0, "scheduled"), (3000, "running")), (planned, status)
        assert _sink_count(smtp_sink) == 0 or status == "running"
        worker = start_worker(settings, log)
        wait_for_status(db, campaign_id, "done", timeout=240)
    finally:
        kill_worker(worker)
    assert db.scalar(select(Campaign.planned).where(Campaign.id == campaign_id)) == 3000
    _check_exactly_once(db, campaign_id, smtp_sink, bound=RECORD_EVERY)


def test_a_slow_relay_does_not_make_a_live_batch_look_dead(
    own_broker: tuple[Flask, dict[str, Any]], db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The relay takes 8 s to answer one message, far past the 3-s claim lease, while a second
    worker stands ready: the batch keeps its claims alive, so nobody is sent twice."""
    app, settings = own_broker
    issue = ready_seed(app, db)
    readers = add_readers(db, 40, app.config)
    smtp_sink.delay_data(readers[3].email, 8)
    worker = start_worker(settings, tmp_path / "worker.log")
    second = start_worker(settings, tmp_path / "second.log", beat=False)
    try:
        campaign_id = send_now(app, db, issue.id)
        wait_for_status(db, campaign_id, "done", timeout=120)
    finally:
        kill_worker(worker)
        kill_worker(second)
    assert _check_exactly_once(db, campaign_id, smtp_sink, bound=0) == 0
