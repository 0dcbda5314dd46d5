"""Claims: a batch takes due retries before the queued backlog, each row once."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import control
from campaigns.claims import claim
from campaigns.models import Delivery
from core.db import utcnow
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import ready_seed


def _planned(app: Flask, db: Session, readers: int) -> int:
    """A campaign of the seed issue planned for ``readers`` readers, nothing sent; its id."""
    issue = ready_seed(app, db)
    add_readers(db, readers, app.config)
    with app.app_context():
        editor = control.Editor("editor@newsletter.test", is_admin=True)
        campaign = control.create(db, issue.id, editor, app.config, lambda _id: None)
        db.commit()
        control.start(db, campaign.id, None, app.config)
        db.commit()
    return campaign.id


def test_due_retries_are_claimed_before_the_queued_backlog(app: Flask, db: Session) -> None:
    """The last three rows wait for a retry that is due: the next batch takes them first
    (not after every queued reader), and leaves alone a retry that is not due yet."""
    campaign_id = _planned(app, db, 30)
    ids = list(
        db.scalars(
            select(Delivery.id).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
        )
    )
    due, later = ids[-3:], ids[-4]
    db.execute(
        update(Delivery)
        .where(Delivery.id.in_(due))
        .values(status="retry", next_attempt_at=utcnow() - timedelta(minutes=1))
    )
    db.execute(
        update(Delivery)
        .where(Delivery.id == later)
        .values(status="retry", next_attempt_at=utcnow() + timedelta(minutes=5))
    )
    db.commit()
    first = claim(db, campaign_id, 5)
    assert set(due) <= set(first) and later not in first and len(first) == 5
    rest: list[int] = []
    while batch := claim(db, campaign_id, 7):
        rest += batch
    # Every row but the retry not yet due is claimed, each exactly once.
    assert sorted(first + rest) == sorted(set(ids) - {later})
    statuses = dict(
        db.execute(select(Delivery.id, Delivery.status).where(Delivery.id == later)).all()
    )
    assert statuses == {later: "retry"}
