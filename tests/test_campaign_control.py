"""Campaigns under trouble and under control, through real workers, a real broker and a real
SMTP peer: refused recipients, a relay that is down, pause, resume and cancel, readers who
leave mid-send, competing workers, simultaneous starts and a schedule that ran out of time.

Tests that reconfigure or stop workers run them on a broker database of their own, so the
session's worker (on the shared broker) can never take their tasks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import tasks
from campaigns.models import Campaign
from campaigns.models import Delivery
from core import create_app
from core.db import utcnow
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import kill_worker
from tests.campaign_helpers import ledger
from tests.campaign_helpers import ready_seed
from tests.campaign_helpers import start_worker
from tests.campaign_helpers import status_of
from tests.campaign_helpers import wait_for_status
from tests.conftest import SmtpSink
from tests.conftest import free_port
from tests.conftest import wait_until

ADMIN = control.Editor("editor@newsletter.test", is_admin=True)
# A worker sending slowly enough to be caught mid-send: 50 a second, 50 per batch.
SLOW = {"SEND_RATE": 50, "BATCH_SIZE": 50}


# --- arrangements -------------------------------------------------------------------------


class OwnBroker:
    """A console (Flask app) and workers on a broker database nobody else consumes."""

    def __init__(self, settings: dict[str, Any], log_dir: Path) -> None:
        url = str(settings["REDIS_URL"]).rsplit("/", 1)[0] + "/13"
        redis_lib.Redis.from_url(url).flushdb()
        self.settings = {**settings, "REDIS_URL": url}
        self.log_dir = log_dir
        self.workers: list[Any] = []
        # Created last, its Celery app is the current one: tasks enqueued here go to `url`.
        self.app = create_app({**self.settings, "TESTING": True})
        self.app.extensions["celery"].set_current()

    def worker(self, **overrides: Any) -> Any:
        log = self.log_dir / f"worker-{len(self.workers)}.log"
        process = start_worker(self.settings, log, beat=False, **overrides)
        self.workers.append(process)
        return process

    def close(self) -> None:
        for process in self.workers:
            kill_worker(process)
        self.app.extensions["db"].kw["bind"].dispose()


@pytest.fixture
def own(app: Flask, settings: dict[str, Any], tmp_path: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(settings, tmp_path)
    yield broker
    broker.close()


def start_campaign(app: Flask, db: Session, issue_id: int) -> int:
    """Create a campaign that starts at once, as the console does; its id."""
    with app.app_context():
        campaign = control.create(db, issue_id, ADMIN, app.config, tasks.enqueue_start)
        db.commit()
        return campaign.id


def sink_count(sink: SmtpSink) -> int:
    with sink.lock:
        return len(sink.messages)


def envelopes(sink: SmtpSink) -> Counter[str]:
    """How many messages the sink received for each address."""
    with sink.lock:
        return Counter(rcpt.lower() for _, rcpts, _ in sink.messages for rcpt in rcpts)


def deliveries(db: Session, campaign_id: int) -> dict[str, Delivery]:
    """The campaign's ledger rows by reader address."""
    db.expire_all()
    rows = db.execute(
        select(Delivery, Subscriber.email)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign_id)
    )
    found = {email: row for row, email in rows}
    db.rollback()
    return found


def assert_sink_matches_ledger(db: Session, campaign_id: int, sink: SmtpSink) -> Counter[str]:
    """Nobody got two messages, and the ledger's "sent" are exactly the sink's recipients."""
    received = envelopes(sink)
    assert set(received.values()) <= {1}, [a for a, n in received.items() if n > 1]
    sent = {a for a, row in deliveries(db, campaign_id).items() if row.status == "sent"}
    assert set(received) == sent
    return received


# --- 1. refused recipients ----------------------------------------------------------------


def test_refusals_retry_bounce_and_fail_each_as_the_relay_said(
    app: Flask, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """451 4.3.0 for three readers (lifted after the first try), 550 5.1.1 for two, 550 5.7.1 for two."""
    issue = ready_seed(app, db)
    readers = [reader.email for reader in add_readers(db, 80, app.config)]
    later, unknown, policy = readers[3:6], readers[10:12], readers[20:22]
    for address in later:
        smtp_sink.refuse(address, 451, "4.3.0 try again")
    for address in unknown:
        smtp_sink.refuse(address, 550, "5.1.1 no such mailbox")
    for address in policy:
        smtp_sink.refuse(address, 550, "5.7.1 message refused by policy")
    campaign_id = start_campaign(app, db, issue.id)

    lifted: set[str] = set()

    def lift_after_first_try() -> bool:
        """every temporarily refused reader has had a first try, and the refusal was lifted"""
        for address, row in deliveries(db, campaign_id).items():
            if address in later and address not in lifted and row.status == "retry":
                assert row.smtp_code == 451
                with smtp_sink.lock:
                    smtp_sink.refusals.pop(address)
                lifted.add(address)
        return lifted == set(later)

    wait_until(lift_after_first_try, timeout=60, interval=0.02)
    wait_for_status(db, campaign_id, "done", timeout=60)

    counts = ledger(db, campaign_id)
    assert counts == {"sent": 80 - 4, "bounced": 2, "failed": 2}, counts
    received = assert_sink_matches_ledger(db, campaign_id, smtp_sink)
    assert sum(received.values()) == counts["sent"]
    rows = deliveries(db, campaign_id)
    for address in later:
        assert received[address] == 1
        assert rows[address].attempts >= 2 and rows[address].smtp_code == 250
    for address in unknown + policy:
        assert address not in received
        assert rows[address].attempts == 1
    subscribers = {
        s.email: s
        for s in db.scalars(select(Subscriber).where(Subscriber.email.in_(unknown + policy)))
    }
    suppressed = set(db.scalars(select(Suppression.email_hash)))
    for address in unknown:
        assert rows[address].status == "bounced" and rows[address].smtp_code == 550
        assert subscribers[address].status == "bounced"
        assert subscribers[address].email_hash in suppressed
    for address in policy:
        assert rows[address].status == "failed" and "5.7.1" in (rows[address].smtp_reply or "")
        assert subscribers[address].status == "active"
        assert subscribers[address].email_hash not in suppressed
    assert len(suppressed) == 2


# --- 2. the relay is down -----------------------------------------------------------------


def test_relay_outage_pauses_the_campaign_and_blames_no_reader(
    app: Flask, db: Session, own: OwnBroker, smtp_sink: SmtpSink, settings: dict[str, Any]
) -> None:
    """Nothing listens on the relay's port: the send pauses itself; resumed on a live relay, all arrive once."""
    issue = ready_seed(app, db)
    readers = {reader.email for reader in add_readers(db, 400, app.config)}
    down = own.worker(SMTP_PORT=free_port())
    campaign_id = start_campaign(own.app, db, issue.id)
    wait_for_status(db, campaign_id, "paused", timeout=60)

    campaign = db.get(Campaign, campaign_id)
    assert campaign is not None and campaign.paused_reason is not None
    assert "mail server" in campaign.paused_reason["msgid"]
    assert "421" in campaign.paused_reason["params"]["reply"]
    # Relay failures are never the readers' fault: nothing failed, bounced or counted a try.
    wait_until(lambda: "sending" not in ledger(db, campaign_id), timeout=10)
    counts = ledger(db, campaign_id)
    assert set(counts) <= {"queued", "retry"} and sum(counts.values()) == 400, counts
    tries = db.scalar(
        select(func.sum(Delivery.attempts)).where(Delivery.campaign_id == campaign_id)
    )
    db.rollback()
    assert tries == 0
    assert sink_count(smtp_sink) == 0

    kill_worker(down)
    own.worker(SMTP_PORT=settings["SMTP_PORT"])
    with own.app.app_context():
        assert control.resume(db, campaign_id, tasks.enqueue_batches)
        db.commit()
    wait_for_status(db, campaign_id, "done", timeout=60)

    assert ledger(db, campaign_id) == {"sent": 400}
    received = assert_sink_matches_ledger(db, campaign_id, smtp_sink)
    assert set(received) == readers and sum(received.values()) == 400


# --- 3. pause, resume, cancel; 4. a reader who leaves meanwhile ---------------------------


def wait_for_messages(sink: SmtpSink, count: int) -> None:
    def arrived() -> bool:
        """the sink has received enough messages"""
        return sink_count(sink) >= count

    wait_until(arrived, timeout=30, interval=0.01)


def assert_stops_within_a_second(sink: SmtpSink, total: int) -> int:
    """After the in-flight messages of the first second, not one more arrives for 2 s."""
    time.sleep(1.0)
    settled = sink_count(sink)
    time.sleep(2.0)
    assert sink_count(sink) == settled
    assert settled < total
    return settled


def test_pause_stops_sending_within_a_second_and_resume_sends_the_rest_once(
    app: Flask, db: Session, own: OwnBroker, smtp_sink: SmtpSink
) -> None:
    """300 readers at 50 a second, paused mid-send and resumed."""
    issue = ready_seed(app, db)
    readers = {reader.email for reader in add_readers(db, 300, app.config)}
    own.worker(**SLOW)
    campaign_id = start_campaign(own.app, db, issue.id)
    wait_for_messages(smtp_sink, 80)
    assert control.pause(db, campaign_id, None)
    db.commit()

    assert_stops_within_a_second(smtp_sink, 300)
    assert status_of(db, campaign_id) == "paused"
    # The claimed rows not yet sent went back to the queue.
    counts = ledger(db, campaign_id)
    assert "sending" not in counts and counts["sent"] == sink_count(smtp_sink), counts

    with own.app.app_context():
        assert control.resume(db, campaign_id, tasks.enqueue_batches)
        db.commit()
    wait_for_status(db, campaign_id, "done", timeout=60)
    assert ledger(db, campaign_id) == {"sent": 300}
    received = assert_sink_matches_ledger(db, campaign_id, smtp_sink)
    assert set(received) == readers and sum(received.values()) == 300


def test_a_reader_who_unsubscribes_while_paused_receives_nothing(
    app: Flask, db: Session, own: OwnBroker, smtp_sink: SmtpSink
) -> None:
    """A reader not yet sent unsubscribes while the send is paused; it is resumed."""
    issue = ready_seed(app, db)
    readers = {reader.email for reader in add_readers(db, 150, app.config)}
    own.worker(**SLOW)
    campaign_id = start_campaign(own.app, db, issue.id)
    wait_for_messages(smtp_sink, 10)
    assert control.pause(db, campaign_id, None)
    db.commit()
    wait_until(lambda: "sending" not in ledger(db, campaign_id), timeout=10)

    # The last reader in the queue: the furthest from being sent.
    rows = deliveries(db, campaign_id)
    leaver = max((a for a, row in rows.items() if row.status == "queued"), key=lambda a: rows[a].id)
    db.execute(update(Subscriber).where(Subscriber.email == leaver).values(status="unsubscribed"))
    db.commit()
    with own.app.app_context():
        assert control.resume(db, campaign_id, tasks.enqueue_batches)
        db.commit()
    wait_for_status(db, campaign_id, "done", timeout=60)

    assert ledger(db, campaign_id) == {"sent": 149, "skipped": 1}
    row = deliveries(db, campaign_id)[leaver]
    assert (row.status, row.skip_reason, row.attempts) == ("skipped", "unsubscribed", 0)
    received = assert_sink_matches_ledger(db, campaign_id, smtp_sink)
    assert leaver not in received and set(received) == readers - {leaver}


def test_cancel_stops_sending_and_a_new_send_reaches_only_those_not_reached(
    app: Flask, db: Session, own: OwnBroker, smtp_sink: SmtpSink
) -> None:
    """300 readers at 50 a second, cancelled mid-send; then the issue is sent again."""
    issue = ready_seed(app, db)
    readers = {reader.email for reader in add_readers(db, 300, app.config)}
    own.worker(**SLOW)
    campaign_id = start_campaign(own.app, db, issue.id)
    wait_for_messages(smtp_sink, 80)
    not_sent = control.cancel(db, campaign_id)
    db.commit()
    assert not_sent > 0

    assert_stops_within_a_second(smtp_sink, 300)
    assert status_of(db, campaign_id) == "cancelled"
    with pytest.raises(control.CampaignError):
        control.cancel(db, campaign_id)
    db.rollback()
    wait_until(lambda: "sending" not in ledger(db, campaign_id), timeout=10)
    counts = ledger(db, campaign_id)
    assert set(counts) == {"sent", "skipped"} and sum(counts.values()) == 300, counts
    # Rows a batch held when the cancel came were never handed to the relay: skipped too.
    assert not_sent <= counts["skipped"] <= not_sent + SLOW["BATCH_SIZE"]
    rows = deliveries(db, campaign_id)
    skipped = {a for a, row in rows.items() if row.status == "skipped"}
    assert {rows[a].skip_reason for a in skipped} == {"cancelled"}
    first = assert_sink_matches_ledger(db, campaign_id, smtp_sink)
    assert sum(first.values()) == counts["sent"]
    assert db.scalar(select(Campaign.finished_at).where(Campaign.id == campaign_id)) is not None
    db.rollback()

    # The issue is still "ready": a new send reaches exactly the readers not reached.
    again = start_campaign(own.app, db, issue.id)
    wait_for_status(db, again, "done", timeout=60)
    assert ledger(db, again) == {"sent": len(skipped)}
    assert set(deliveries(db, again)) == skipped
    received = envelopes(smtp_sink)
    assert set(received) == readers and set(received.values()) == {1}


# --- 5. competing workers -----------------------------------------------------------------


def test_three_worker_processes_send_one_campaign_without_a_duplicate(
    app: Flask,
    db: Session,
    celery_worker: Any,
    smtp_sink: SmtpSink,
    settings: dict[str, Any],
    tmp_path: Path,
) -> None:
    """1,000 readers, the session's worker plus a worker of two processes, small batches."""
    issue = ready_seed(app, db)
    readers = {reader.email for reader in add_readers(db, 1000, app.config)}
    log = tmp_path / "pair.log"
    pair = start_worker(
        settings, log, concurrency=2, beat=False, BATCH_SIZE=50, SEND_PARALLEL_BATCHES=8
    )
    try:
        campaign_id = start_campaign(app, db, issue.id)
        wait_for_status(db, campaign_id, "done", timeout=120)
    finally:
        kill_worker(pair)

    assert ledger(db, campaign_id) == {"sent": 1000}
    received = assert_sink_matches_ledger(db, campaign_id, smtp_sink)
    assert set(received) == readers and sum(received.values()) == 1000 == sink_count(smtp_sink)
    # The second worker really took part.
    assert log.read_text(errors="replace").count("campaigns.tasks.send_batch") > 0


# --- 6. simultaneous starts ----------------------------------------------------------------


def test_two_creates_and_two_starts_make_one_campaign_planned_once(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """The same issue created twice, then its campaign started from two sessions at once."""
    issue = ready_seed(app, db)
    add_readers(db, 120, app.config)
    enqueued: list[int] = []
    with app.app_context():
        # No worker runs the start: it waits, scheduled, as if the broker were down.
        campaign = control.create(db, issue.id, ADMIN, app.config, enqueued.append)
        db.commit()
        campaign_id = campaign.id
        with pytest.raises(control.CampaignError):
            control.create(db, issue.id, ADMIN, app.config, enqueued.append)
        db.rollback()
    assert enqueued == [campaign_id]
    assert db.scalar(select(func.count(Campaign.id))) == 1
    db.rollback()

    results: list[int | None] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        session: Session = app.extensions["db"]()
        try:
            with app.app_context():
                barrier.wait()
                results.append(control.start(session, campaign_id, "editor", app.config))
                session.commit()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            session.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(results, key=lambda r: r is None) == [120, None]
    assert status_of(db, campaign_id) == "running"
    assert ledger(db, campaign_id) == {"queued": 120}
    assert db.scalar(select(Campaign.planned).where(Campaign.id == campaign_id)) == 120
    distinct = db.scalar(
        select(func.count(func.distinct(Delivery.subscriber_id))).where(
            Delivery.issue_id == issue.id
        )
    )
    db.rollback()
    assert distinct == 120


# --- 7. a schedule that ran out of time ----------------------------------------------------


def test_a_schedule_whose_not_after_has_passed_expires_and_never_sends(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """Scheduled in 1 s with "not after" in 2 s; nothing starts it until both have passed."""
    issue = ready_seed(app, db)
    add_readers(db, 60, app.config)
    enqueued: list[int] = []
    now = utcnow()
    with app.app_context():
        campaign = control.create(
            db,
            issue.id,
            ADMIN,
            app.config,
            enqueued.append,
            send_at=now + timedelta(seconds=1),
            not_after=now + timedelta(seconds=2),
        )
        db.commit()
        campaign_id = campaign.id
    assert enqueued == []  # not due yet: only the beat would start it
    assert status_of(db, campaign_id) == "scheduled"
    wait_until(lambda: utcnow() > now + timedelta(seconds=2.1), timeout=5)

    with app.app_context():
        # What the beat's start does; a second try finds it expired already.
        for _ in range(2):
            assert control.start(db, campaign_id, None, app.config) is None
            db.commit()
    assert status_of(db, campaign_id) == "expired"
    expired = db.get(Campaign, campaign_id)
    assert expired is not None and expired.finished_at is not None and expired.started_at is None
    db.rollback()
    assert ledger(db, campaign_id) == {}
    assert db.scalar(select(func.count(Delivery.id))) == 0
    db.rollback()
    assert sink_count(smtp_sink) == 0
