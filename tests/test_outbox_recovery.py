"""Nothing is lost when a worker dies or the broker was down: stale rows are enqueued again, once."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import db as core_db
from core.db import utcnow
from mailer import outbox
from mailer.models import OutboxMessage
from mailer.tasks import requeue_stale
from tests.conftest import SmtpSink
from tests.conftest import wait_until


def _row(db: Session, **values: object) -> int:
    message = OutboxMessage(
        kind="test", to_address="late@example.com", locale="zh", params={}, **values
    )
    db.add(message)
    db.commit()
    return message.id


def test_stale_picks_dead_claims_and_forgotten_rows_only(app: Flask, db: Session) -> None:
    """A claim past its lease and a due row nobody picked up come back; fresh ones and sent ones do not."""
    now = utcnow()
    dead = _row(db, status="sending", claimed_at=now - outbox.CLAIM_LEASE - timedelta(minutes=1))
    forgotten = _row(
        db, status="queued", next_attempt_at=now - outbox.QUEUED_GRACE - timedelta(minutes=1)
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
