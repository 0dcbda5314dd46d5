"""What an adversarial review of the send path broke, each now a test: a refused sender is
not every reader's bounce, a provider's "421 4.7.0" at the greeting is the relay's failure,
a send that cannot be prepared stops with a reason, and a batch cut short by the task's time
limit gives its rows back without spending their tries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import progress
from campaigns import send
from campaigns import tasks
from campaigns.models import Campaign
from campaigns.models import Delivery
from core import create_app
from core import db as core_db
from core.db import utcnow
from mailer.smtp import PermanentFailure
from mailer.smtp import is_hard_bounce
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import kill_worker
from tests.campaign_helpers import ledger
from tests.campaign_helpers import on_own_broker
from tests.campaign_helpers import own_throttle
from tests.campaign_helpers import planned_here
from tests.campaign_helpers import ready_seed
from tests.campaign_helpers import send_now
from tests.campaign_helpers import start_worker
from tests.campaign_helpers import wait_for_status
from tests.conftest import SmtpSink
from tests.conftest import wait_until


def _resume(app: Flask, db: Session, campaign_id: int) -> None:
    with app.app_context():
        assert control.resume(db, campaign_id, tasks.enqueue_batches)
        db.commit()


def _once_each_but(sink: SmtpSink, readers: list[Subscriber], but: str) -> None:
    with sink.lock:
        addresses = sorted(rcpts[0].lower() for _, rcpts, _ in sink.messages if rcpts[0] != but)
    assert addresses == sorted(reader.email for reader in readers if reader.email != but)


def _once_each(sink: SmtpSink, readers: list[Subscriber]) -> None:
    with sink.lock:
        addresses = sorted(rcpts[0].lower() for _, rcpts, _ in sink.messages)
    assert addresses == sorted(reader.email for reader in readers)


@pytest.mark.parametrize(
    ("code", "reply", "stage", "hard"),
    [
        (550, "5.1.1 <x@example.org>: Recipient address rejected: User unknown", "rcpt", True),
        (550, "No such user here", "rcpt", True),
        (553, "5.1.8 Sender address rejected: Domain not found", "rcpt", False),
        (550, "5.1.0 Sender address rejected", "mail", False),
        (550, "Sender domain does not exist", "rcpt", False),
        (550, "mailbox unavailable (IP blocked by policy)", "rcpt", False),
        (550, "5.1.1 User unknown", "data", False),
        (552, "5.2.2 Mailbox full", "rcpt", False),
    ],
)
def test_only_a_refused_recipient_address_is_a_hard_bounce(
    code: int, reply: str, stage: str, hard: bool
) -> None:
    """A hard bounce is the recipient's address refused at RCPT, never our sender or content."""
    assert is_hard_bounce(PermanentFailure(code, reply, stage)) is hard


def test_a_refused_sender_pauses_the_send_and_blames_no_reader(
    app: Flask, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """The relay refuses our MAIL FROM (553 5.1.8): nobody is bounced or blocked, the send
    pauses with the relay's words, and resumes to send everyone once."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 40, app.config)
    smtp_sink.refuse_senders(553, "5.1.8 Sender address rejected: Domain not found")
    campaign_id = send_now(app, db, issue.id)
    wait_for_status(db, campaign_id, "paused", timeout=60)
    assert db.scalar(select(func.count(Suppression.id))) == 0
    assert set(db.scalars(select(Subscriber.status))) == {"active"}
    assert not ledger(db, campaign_id).keys() - {"queued", "retry"}
    assert db.scalar(select(func.max(Delivery.attempts))) == 0
    reason = db.scalar(select(Campaign.paused_reason).where(Campaign.id == campaign_id))
    assert reason is not None and "5.1.8" in reason["params"]["reply"]
    db.rollback()
    smtp_sink.refuse_senders(None)
    _resume(app, db, campaign_id)
    wait_for_status(db, campaign_id, "done", timeout=60)
    assert ledger(db, campaign_id) == {"sent": 40}
    _once_each(smtp_sink, readers)


def test_a_421_4_7_0_greeting_is_the_relays_failure(
    app: Flask, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """ "421 4.7.0 too many connections" from our own relay pauses the send instead of
    deferring every reader's domain, with no try spent."""
    issue = ready_seed(app, db)
    add_readers(db, 30, app.config)
    smtp_sink.refuse_connections(421, "4.7.0 Error: too many connections from 127.0.0.1")
    campaign_id = send_now(app, db, issue.id)
    wait_for_status(db, campaign_id, "paused", timeout=60)
    assert db.scalar(select(func.max(Delivery.attempts))) == 0
    assert not ledger(db, campaign_id).keys() - {"queued", "retry"}
    db.rollback()
    smtp_sink.refuse_connections(None)
    _resume(app, db, campaign_id)
    wait_for_status(db, campaign_id, "done", timeout=60)
    assert ledger(db, campaign_id) == {"sent": 30}


def test_a_send_that_cannot_be_prepared_stops_with_a_reason(
    settings: dict[str, Any], app: Flask, db: Session
) -> None:
    """An edition that cannot fit the size budget: the start plans nothing, the send is
    cancelled with the reason on record, and later ticks do not try it again."""
    issue = ready_seed(app, db)
    add_readers(db, 30, app.config)
    tight = create_app({**settings, "TESTING": True, "HTML_BUDGET_BYTES": 2000})
    started: list[int] = []
    with tight.app_context():
        campaign = control.create(
            db, issue.id, control.Editor("e@newsletter.test", True), tight.config, started.append
        )
        db.commit()
        assert tasks.start.run(campaign.id) is None
        assert tasks.start.run(campaign.id) is None
    db.expire_all()
    stopped = db.get(Campaign, campaign.id)
    assert stopped is not None and stopped.status == "cancelled"
    assert (
        stopped.paused_reason is not None and "over the" in stopped.paused_reason["params"]["error"]
    )
    assert db.scalar(select(func.count(Delivery.id))) == 0
    tight.extensions["db"].kw["bind"].dispose()


def test_a_batch_cut_short_by_the_time_limit_spends_no_tries(
    settings: dict[str, Any], app: Flask, db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Batches that would outlast the task's soft time limit stop in time and give their
    rows back: every reader is sent once, each on their first try."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 120, app.config)
    # A batch of 120 at 20 a second needs 6 s; the soft limit is 5 s, the batch's budget 2.5.
    with on_own_broker(settings, 11, TASK_TIME_LIMIT=20, SEND_RATE=20) as (slow, mine):
        worker = start_worker(mine, tmp_path / "worker.log", concurrency=2)
        try:
            campaign_id = send_now(slow, db, issue.id)
            wait_for_status(db, campaign_id, "done", timeout=120)
        finally:
            kill_worker(worker)
    assert ledger(db, campaign_id) == {"sent": 120}
    assert set(db.scalars(select(Delivery.attempts))) == {1}
    _once_each(smtp_sink, readers)


def test_a_relay_outage_mid_send_pauses_and_resume_finishes_without_duplicates(
    app: Flask, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """The relay goes down (refuses every new connection) after some messages went out: the
    send pauses with the relay's words, nobody is failed, and resume sends the rest once."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 600, app.config)
    campaign_id = send_now(app, db, issue.id)
    wait_until(lambda: len(smtp_sink.messages) >= 100, timeout=60)
    smtp_sink.refuse_connections(421)
    wait_for_status(db, campaign_id, "paused", timeout=60)
    counts = ledger(db, campaign_id)
    assert not counts.keys() - {"sent", "queued", "retry"}, counts
    assert 100 <= counts["sent"] < 600
    reason = db.scalar(select(Campaign.paused_reason).where(Campaign.id == campaign_id))
    assert reason is not None and reason["params"]["reply"].startswith("421")
    db.rollback()
    smtp_sink.refuse_connections(None)
    _resume(app, db, campaign_id)
    wait_for_status(db, campaign_id, "done", timeout=120)
    assert ledger(db, campaign_id) == {"sent": 600}
    _once_each(smtp_sink, readers)


def test_a_message_whose_reply_is_lost_after_its_content_is_a_counted_try(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """The relay takes one reader's content but answers after the reply timeout: the relay
    may have kept it, so that row is a try counted and waits for the backoff, instead of
    going back to the queue uncounted and being handed over again by every later batch (the
    review's reproduction: four handovers in nine batches). The batch stops, its unsent rows
    go back untouched, and the readers after it are sent once by the next batch."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 12, app.config)
    victim = readers[4].email
    app.config.update(
        SMTP_TIMEOUT=1,
        SMTP_DATA_TIMEOUT=1,
        BATCH_SIZE=50,
        SEND_RECORD_EVERY=2,
        RETRY_BACKOFF_SECONDS=60,
    )
    smtp_sink.delay_data(victim, 1.5)
    throttle = own_throttle(app)
    with app.app_context():
        campaign_id = planned_here(app, db, issue.id)
        first = send.send_batch(db, campaign_id, app.config, throttle)
        assert (first.claimed, first.sent) == (12, 4)
        assert ledger(db, campaign_id) == {"sent": 4, "retry": 1, "queued": 7}
        row = db.execute(
            select(Delivery.attempts, Delivery.next_attempt_at, Delivery.smtp_reply)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == victim)
        ).one()
        assert row.attempts == 1 and row.next_attempt_at > utcnow()
        assert row.smtp_reply is not None and "connection lost" in row.smtp_reply
        # The rows after it were never handed over: back in the queue, no try spent.
        queued = db.scalars(
            select(Delivery.attempts).where(
                Delivery.campaign_id == campaign_id, Delivery.status == "queued"
            )
        ).all()
        assert list(queued) == [0] * 7
        second = send.send_batch(db, campaign_id, app.config, throttle)
    assert (second.claimed, second.sent) == (7, 7)
    assert ledger(db, campaign_id) == {"sent": 11, "retry": 1}
    with smtp_sink.lock:
        taken = sorted(rcpts[0].lower() for _, rcpts, _ in smtp_sink.messages)
    assert taken == sorted(reader.email for reader in readers if reader.email != victim)


def test_a_batch_reads_its_rows_as_claimed_even_if_its_session_held_them(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """A worker's session (which keeps objects across commits) already holds the ledger's
    rows, as queued with no try, when a batch claims them, and one reader has left since
    planning: the batch works from the rows as claimed, so the reader who left is skipped
    with no try spent (not -1) and the others are sent once."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 8, app.config)
    throttle = own_throttle(app)
    with app.app_context():
        campaign_id = planned_here(app, db, issue.id)
        db.execute(
            update(Subscriber).where(Subscriber.id == readers[2].id).values(status="unsubscribed")
        )
        db.commit()
        worker_session = core_db.session()
        held = worker_session.scalars(
            select(Delivery).where(Delivery.campaign_id == campaign_id)
        ).all()
        worker_session.commit()
        assert {(row.status, row.attempts) for row in held} == {("queued", 0)}
        result = send.send_batch(worker_session, campaign_id, app.config, throttle)
        worker_session.close()
    assert (result.claimed, result.sent) == (8, 7)
    rows = db.execute(
        select(Delivery.subscriber_id, Delivery.status, Delivery.attempts).where(
            Delivery.campaign_id == campaign_id
        )
    ).all()
    assert {(row.status, row.attempts) for row in rows if row.subscriber_id == readers[2].id} == {
        ("skipped", 0)
    }
    assert {(row.status, row.attempts) for row in rows if row.subscriber_id != readers[2].id} == {
        ("sent", 1)
    }
    _once_each(smtp_sink, readers[:2] + readers[3:])


def test_a_send_pauses_when_half_of_its_latest_200_messages_failed(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """The relay takes the first 150 readers' messages, then refuses every message as spam:
    after the fifth batch of 50, 100 of the latest 200 outcomes failed, and the send pauses,
    saying so. Over all 250 it would be 40 %: the window is the latest outcomes, not the
    whole send, so a send that goes bad late is still stopped."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 250, app.config)
    for reader in readers[150:]:
        smtp_sink.refuse_data(reader.email, 554, "5.7.1 Message rejected as spam")
    app.config.update(BATCH_SIZE=50, SEND_FAILURE_RATE_TO_PAUSE=50)
    throttle = own_throttle(app)
    with app.app_context():
        campaign_id = planned_here(app, db, issue.id)
        results = []
        for _ in range(4):
            results.append(send.send_batch(db, campaign_id, app.config, throttle))
            assert results[-1].more, results
        last = send.send_batch(db, campaign_id, app.config, throttle)
    assert [(r.claimed, r.sent) for r in results] == [(50, 50)] * 3 + [(50, 0)]
    assert (last.claimed, last.sent, last.more) == (50, 0, False)
    assert ledger(db, campaign_id) == {"sent": 150, "failed": 100}
    paused = db.execute(
        select(Campaign.status, Campaign.paused_reason).where(Campaign.id == campaign_id)
    ).one()
    assert paused.status == "paused"
    assert paused.paused_reason == {
        "msgid": "%(percent)s%% of the last %(count)s messages failed; check the failures below.",
        "params": {"percent": 50, "count": 200},
    }


def test_a_reader_removed_by_hand_keeps_their_ledger_row_and_is_skipped(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """Readers are erased in place, never deleted; one deleted by hand in SQL after
    planning leaves their ledger row (the history outlives them) and the batch skips it as
    erased instead of leaving it claimed. The others are sent once."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 5, app.config)
    gone = readers[1]
    throttle = own_throttle(app)
    with app.app_context():
        campaign_id = planned_here(app, db, issue.id)
        db.execute(delete(Subscriber).where(Subscriber.id == gone.id))
        db.commit()
        result = send.send_batch(db, campaign_id, app.config, throttle)
    assert (result.claimed, result.sent) == (5, 4)
    row = db.execute(
        select(Delivery.status, Delivery.skip_reason, Delivery.attempts).where(
            Delivery.subscriber_id == gone.id
        )
    ).one()
    assert tuple(row) == ("skipped", "erased", 0)
    assert ledger(db, campaign_id) == {"sent": 4, "skipped": 1}
    _once_each(smtp_sink, [reader for reader in readers if reader.id != gone.id])


def test_a_relay_slower_than_the_command_timeout_to_take_a_message_is_waited_for(
    app: Flask, db: Session, smtp_sink: SmtpSink
) -> None:
    """The relay takes 1.5 s to answer the end of one reader's message, longer than the
    1-s timeout for commands but within the one for a whole message (SMTP_DATA_TIMEOUT, 10
    minutes by default): the batch waits, so the reader gets it once and nobody is retried.
    With one timeout for both, the review counted six copies kept by such a relay."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 6, app.config)
    smtp_sink.delay_data(readers[2].email, 1.5)
    app.config.update(SMTP_TIMEOUT=1, SMTP_DATA_TIMEOUT=5)
    throttle = own_throttle(app)
    with app.app_context():
        campaign_id = planned_here(app, db, issue.id)
        result = send.send_batch(db, campaign_id, app.config, throttle)
    assert (result.claimed, result.sent) == (6, 6)
    assert ledger(db, campaign_id) == {"sent": 6}
    _once_each(smtp_sink, readers)


def test_a_batch_cut_off_while_the_relay_holds_a_content_counts_that_try(
    settings: dict[str, Any], app: Flask, db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The relay sits on one reader's message past the task's soft time limit (5 s): the
    batch is cut off while the relay may be keeping it, so that row is a counted try and
    waits for the backoff, not a row given back untried. Sent again once the relay is quick,
    that reader has at most two copies, with one Message-ID; everyone else one."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 20, app.config)
    victim = readers[5].email
    smtp_sink.delay_data(victim, 8)
    with on_own_broker(settings, 12, TASK_TIME_LIMIT=20, RETRY_BACKOFF_SECONDS=1) as (slow, mine):
        worker = start_worker(mine, tmp_path / "worker.log", concurrency=2)
        try:
            campaign_id = send_now(slow, db, issue.id)

            def victim_waits() -> bool:
                db.expire_all()
                row = db.execute(
                    select(Delivery.status, Delivery.attempts)
                    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                    .where(Subscriber.email == victim)
                ).first()
                db.rollback()
                # No row until the campaign is planned.
                return row is not None and tuple(row) == ("retry", 1)

            wait_until(victim_waits, timeout=60)
            smtp_sink.delay_data(victim, 0)
            wait_for_status(db, campaign_id, "done", timeout=120)
        finally:
            kill_worker(worker)
    assert ledger(db, campaign_id) == {"sent": 20}
    attempts = dict(
        db.execute(
            select(Subscriber.email, Delivery.attempts).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        ).all()
    )
    assert attempts.pop(victim) == 2 and set(attempts.values()) == {1}
    copies = smtp_sink.to(victim)
    assert 1 <= len(copies) <= 2 and len({copy["Message-ID"] for copy in copies}) == 1
    _once_each_but(smtp_sink, readers, victim)


def test_the_failures_of_a_reader_removed_by_hand_are_still_listed(app: Flask, db: Session) -> None:
    """A failed delivery whose reader was deleted in SQL stays in the campaign's failures,
    as it stays in its counts, shown as erased rather than dropped from the list."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 3, app.config)
    campaign_id = planned_here(app, db, issue.id)
    db.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign_id)
        .values(status="failed", attempts=1, smtp_code=554, smtp_reply="5.7.1 rejected")
    )
    db.execute(delete(Subscriber).where(Subscriber.id == readers[0].id))
    db.commit()
    listed = progress.failures(db, campaign_id)
    assert sorted(failure.email or "" for failure in listed) == sorted(
        ["", readers[1].email, readers[2].email]
    )
    assert progress.counts(db, campaign_id)["failed"] == len(listed) == 3


def test_a_deleted_readers_id_is_never_given_to_a_new_reader(app: Flask, db: Session) -> None:
    """The ledger keeps a deleted reader's rows without a foreign key, so their id must not
    come back: SQLite reuses the highest id unless told not to (AUTOINCREMENT)."""
    readers = add_readers(db, 2, app.config)
    last = max(reader.id for reader in readers)
    db.execute(delete(Subscriber).where(Subscriber.id == last))
    db.commit()
    newcomer = add_readers(db, 1, app.config, prefix="new")[0]
    assert newcomer.id > last
