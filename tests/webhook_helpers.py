"""Arrangements the webhook tests share: a sent campaign whose deliveries carry our Message-IDs,
and a snapshot of everything an event can change, to prove a refused request changed nothing."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import control
from campaigns.models import Delivery
from campaigns.send import message_id
from inbound.models import MailEventRow
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import ready_seed

SENT_AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def sent_campaign(app: Flask, db: Session, readers: int = 4) -> list[Delivery]:
    """A campaign of the seed issue planned for ``readers`` readers, marked sent, each delivery
    with the Message-ID the send gives it."""
    issue = ready_seed(app, db)
    add_readers(db, readers, app.config)
    with app.app_context():
        editor = control.Editor("editor@newsletter.test", is_admin=True)
        campaign = control.create(db, issue.id, editor, app.config, lambda _id: None)
        db.commit()
        control.start(db, campaign.id, None, app.config)
        db.commit()
    db.execute(update(Delivery).values(status="sent", sent_at=SENT_AT))
    db.commit()
    rows = list(db.scalars(select(Delivery).order_by(Delivery.id)))
    for row in rows:
        row.message_id = message_id(row.id, app.config)
    db.commit()
    return rows


def address_of(db: Session, delivery: Delivery) -> str:
    subscriber = db.get(Subscriber, delivery.subscriber_id)
    assert subscriber is not None
    return subscriber.email


def snapshot(db: Session) -> dict[str, Any]:
    """Every row an event may write or change."""
    db.expire_all()
    return {
        "events": sorted(
            db.execute(select(MailEventRow.source, MailEventRow.key, MailEventRow.effect)).all()
        ),
        "suppressed": sorted(db.execute(select(Suppression.email_hash, Suppression.reason)).all()),
        "readers": sorted(db.execute(select(Subscriber.email, Subscriber.status)).all()),
        "deliveries": sorted(db.execute(select(Delivery.id, Delivery.status)).all()),
        "consents": db.scalar(select(ConsentEvent.id).order_by(ConsentEvent.id.desc()).limit(1)),
    }


def statuses(db: Session) -> dict[str, str]:
    """Each reader's status by address."""
    db.expire_all()
    return dict(db.execute(select(Subscriber.email, Subscriber.status)).all())


def effects(db: Session) -> list[tuple[str, str, str]]:
    """The ledger's (source, kind, effect) rows, in order."""
    db.expire_all()
    rows = db.execute(
        select(MailEventRow.source, MailEventRow.kind, MailEventRow.effect).order_by(
            MailEventRow.id
        )
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]
