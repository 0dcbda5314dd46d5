"""Nothing is lost when a worker dies or the broker was down: stale rows are enqueued again, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from core import create_app
from core import db as core_db
from core.db import utcnow
from mailer import delivery
from mailer import outbox
from mailer.message import HeaderInjection
from mailer.models import OutboxMessage
from mailer.tasks import requeue_stale
from tests.conftest import SmtpSink
from tests.conftest import wait_until


def _row(db: Session, **values: object) -> int:
    values = {"to_address": "late@example.com", **values}
    message = OutboxMessage(kind="test", locale="zh", params={}, **values)
    db.add(message)
    db.commit()
    return message.id


def test_stale_picks_dead_claims_and_forgotten_rows_only(app: Flask, db: Session) -> None:
    """A claim past its lease and a due row nobody picked up come back; fresh ones and sent ones do not."""
    now = utcnow()
    dead = _row(db, status="sending", claimed_at=now - delivery.CLAIM_LEASE - timedelta(minutes=1))
    forgotten = _row(
        db, status="queued", next_attempt_at=now - delivery.QUEUED_GRACE - timedelta(minutes=1)
    )
    _row(db, status="sending", claimed_at=now)
    _row(db, status="queued", next_attempt_at=now)
    _row(db, status="sent", claimed_at=now - timedelta(days=1))
    with app.app_context():
        found = outbox.stale(core_db.session())
    assert sorted(found) == sorted([dead, forgotten])
    db.expire_all()
    assert db.get(OutboxMessage, dead).status == "queued"  # type: ignore[union-attr]


def test_requeued_row_is_delivered_exactly_once(
    app: Flask, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """The beat task re-enqueues a forgotten row; the worker sends it once even if enqueued twice."""
    message_id = _row(db, status="queued", next_attempt_at=utcnow() - timedelta(hours=1))
    with app.app_context():
        assert requeue_stale() == 1
        from mailer.tasks import deliver

        deliver.delay(message_id)

    def sent() -> bool:
        db.expire_all()
        return db.get(OutboxMessage, message_id).status == "sent"  # type: ignore[union-attr]

    wait_until(sent)
    wait_until(lambda: len(smtp_sink.to("late@example.com")) >= 1)
    db.expire_all()
    assert db.scalars(select(OutboxMessage.attempts)).one() == 1
    assert len(smtp_sink.to("late@example.com")) == 1


def _tried(db: Session, message_id: int) -> OutboxMessage | None:
    """The row once a try has been recorded and it is no longer claimed."""
    row = db.get(OutboxMessage, message_id, populate_existing=True)
    db.rollback()
    return row if row is not None and row.attempts >= 1 and row.status != "sending" else None


def test_a_message_the_worker_cannot_build_is_not_left_claimed(
    app: Flask, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A builder error in the real worker records a try and requeues the row, never leaves it 'sending'."""
    message_id = _row(db, to_address="a@example.com\r\nBcc: b@example.com", status="queued")
    with app.app_context():
        from mailer.tasks import deliver

        deliver.delay(message_id)
    row = wait_until(lambda: _tried(db, message_id))
    assert row.status == "queued" and row.attempts == 1 and row.next_attempt_at > utcnow()
    assert "HeaderInjection" in (row.smtp_reply or "")
    assert smtp_sink.messages == []


def test_a_message_that_cannot_be_built_fails_after_max_attempts(app: Flask, db: Session) -> None:
    """The last allowed try of an unbuildable message marks it failed, so nothing retries it forever."""
    message_id = _row(db, to_address="a@example.com\nBcc: b@example.com")
    db.execute(update(OutboxMessage).values(attempts=delivery.MAX_ATTEMPTS - 1))
    db.commit()
    with app.app_context():
        session = core_db.session()
        claimed = outbox.claim(session, message_id)
        assert claimed is not None
        with pytest.raises(HeaderInjection):
            outbox.deliver(session, claimed, app.config)
    db.expire_all()
    row = db.get(OutboxMessage, message_id)
    assert row is not None and (row.status, row.attempts) == ("failed", delivery.MAX_ATTEMPTS)


def test_a_dead_claim_out_of_tries_is_failed_not_requeued(app: Flask, db: Session) -> None:
    """A claim whose worker died on the last allowed try is marked failed, not sent yet again."""
    old = utcnow() - delivery.CLAIM_LEASE - timedelta(minutes=1)
    spent = _row(db, status="sending", claimed_at=old, attempts=delivery.MAX_ATTEMPTS)
    retried = _row(db, status="sending", claimed_at=old, attempts=1)
    with app.app_context():
        assert outbox.stale(core_db.session()) == [retried]
    db.expire_all()
    assert db.get(OutboxMessage, spent).status == "failed"  # type: ignore[union-attr]


def test_a_claim_is_not_presumed_dead_while_its_task_may_still_run(app: Flask, db: Session) -> None:
    """With a task time limit longer than the lease, a claim that old may still be sending: keep it."""
    claimed = _row(
        db, status="sending", claimed_at=utcnow() - delivery.CLAIM_LEASE - timedelta(minutes=1)
    )
    lease = delivery.claim_lease({"TASK_TIME_LIMIT": 1800})
    assert lease > timedelta(seconds=1800)
    with app.app_context():
        assert outbox.stale(core_db.session(), lease) == []
        assert outbox.stale(core_db.session(), delivery.claim_lease(app.config)) == [claimed]


def test_a_forgotten_row_is_enqueued_again_once_per_grace_period(app: Flask, db: Session) -> None:
    """The beat re-enqueues a row whose task waits in a long queue once, not on every tick."""
    forgotten = _row(db, status="queued", next_attempt_at=utcnow() - timedelta(hours=1))
    with app.app_context():
        assert outbox.stale(core_db.session()) == [forgotten]
        assert outbox.stale(core_db.session()) == []


def test_send_test_with_the_broker_down_queues_the_row_for_the_beat(
    settings: dict[str, object], db: Session
) -> None:
    """Redis down when a test email is queued: the command still succeeds and the row waits, queued."""
    down = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0", "TESTING": True})
    result = down.test_cli_runner().invoke(args=["send-test", "reader@example.com"])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    row = db.scalars(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("queued", 0)
