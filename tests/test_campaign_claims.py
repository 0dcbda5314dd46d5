"""Claims and starts: a batch takes due retries before the queued backlog, each row once;
a send starts only with the content it was scheduled (and approved) with."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import control
from campaigns.claims import claim
from campaigns.models import Campaign
from campaigns.models import Delivery
from core.db import utcnow
from issues import store
from issues.models import Article
from issues.models import Section
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


def test_a_send_does_not_start_with_content_changed_after_it_was_approved(
    app: Flask, db: Session
) -> None:
    """An editor's send is approved, then the issue goes back to draft, an article title is
    changed and the issue is ready again: when the send is due it is stopped, saying why,
    and nothing is planned (the probe's review, issue 13.5)."""
    issue = ready_seed(app, db)
    add_readers(db, 5, app.config)
    app.config.update(SEND_APPROVAL=True)
    with app.app_context():
        asker = control.Editor("editor@newsletter.test", is_admin=False)
        later = utcnow() + timedelta(hours=1)
        campaign = control.create(db, issue.id, asker, app.config, lambda _id: None, send_at=later)
        db.commit()
        admin = control.Editor("admin@newsletter.test", is_admin=True)
        control.approve(db, campaign.id, admin, lambda _id: None)
        db.commit()
        store.set_status(db, issue.id, "draft")
        article = db.scalars(
            select(Article).join(Section).where(Section.issue_id == issue.id)
        ).first()
        assert article is not None
        store.correct_article(db, article.id, title="改过的标题")
        store.set_status(db, issue.id, "ready")
        db.commit()
        db.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id)
            .values(send_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
        assert control.start(db, campaign.id, None, app.config) is None
        db.commit()
    db.expire_all()
    stopped = db.get(Campaign, campaign.id)
    assert stopped is not None and stopped.status == "cancelled"
    assert stopped.paused_reason is not None
    assert "changed after this send was scheduled" in stopped.paused_reason["msgid"]
    planned = db.scalar(select(func.count()).where(Delivery.campaign_id == campaign.id))
    assert planned == 0
