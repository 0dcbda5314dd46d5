"""Claims and starts: a batch takes due retries before the queued backlog, each row once;
a send starts only with the content it was scheduled (and approved) with."""

from __future__ import annotations

import threading
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import tasks
from campaigns.claims import ClaimKeeper
from campaigns.claims import claim
from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from core import db as core_db
from core.db import utcnow
from issues import store
from issues.models import Article
from issues.models import Issue
from issues.models import Section
from mailer import delivery
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import planned_here
from tests.campaign_helpers import ready_seed
from tests.conftest import wait_until


def _planned(app: Flask, db: Session, readers: int) -> int:
    """A campaign of the seed issue planned for ``readers`` readers, nothing sent; its id."""
    issue = ready_seed(app, db)
    add_readers(db, readers, app.config)
    return planned_here(app, db, issue.id)


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


def _claims_renewed_long_ago(app: Flask, db: Session) -> tuple[Engine, int, list[int], datetime]:
    """On PostgreSQL (skipped on SQLite, which has no row locks, so its one writer at a time
    cannot deadlock): a planned campaign whose five rows one batch claimed, their claims last
    renewed ten minutes ago. The engine, the campaign, the rows and that time."""
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: its one writer at a time cannot deadlock")
    campaign_id = _planned(app, db, 5)
    ids = claim(db, campaign_id, 5)
    old = utcnow() - timedelta(minutes=10)
    db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(claimed_at=old))
    db.commit()
    return engine, campaign_id, ids, old


def test_the_claim_keeper_waits_for_no_row_that_a_batch_is_recording(
    app: Flask, db: Session
) -> None:
    """While a batch's transaction holds one of its rows (recording its outcome), renewing
    the batch's claims neither waits for that row nor skips the others: waiting for it, in
    another order than the batch's, is how the two deadlocked."""
    engine, campaign_id, ids, old = _claims_renewed_long_ago(app, db)
    with engine.connect() as batch:
        batch.execute(update(Delivery).where(Delivery.id == ids[0]).values(status="sent"))
        keeper = ClaimKeeper(engine, campaign_id, ids, timedelta(seconds=60))
        renewing = threading.Thread(target=keeper.renew, daemon=True)
        renewing.start()
        renewing.join(timeout=10)
        waited = renewing.is_alive()
        batch.rollback()
    renewing.join(timeout=10)
    assert not waited, "the keeper waited for the row the batch holds"
    claimed_at = dict(
        db.execute(select(Delivery.id, Delivery.claimed_at).where(Delivery.id.in_(ids))).all()
    )
    assert claimed_at[ids[0]] == old
    assert all(claimed_at[i] > old + timedelta(minutes=9) for i in ids[1:]), claimed_at


def test_the_claim_keeper_holds_no_row_while_it_waits_for_the_campaign_row(
    app: Flask, db: Session
) -> None:
    """A batch that counts a relay failure holds the campaign row, then records its rows:
    the keeper, waiting meanwhile to beat on that campaign row, has already committed its
    renewal and holds none of them (holding them was the second deadlock)."""
    engine, campaign_id, ids, old = _claims_renewed_long_ago(app, db)

    def renewed() -> bool:
        query = select(func.min(Delivery.claimed_at)).where(Delivery.id.in_(ids))
        with engine.connect() as look:
            oldest = look.scalar(query)
        return oldest is not None and oldest > old + timedelta(minutes=9)

    with engine.connect() as batch:
        batch.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(relay_failures=Campaign.relay_failures + 1)
        )
        keeper = ClaimKeeper(engine, campaign_id, ids, timedelta(seconds=60))
        renewing = threading.Thread(target=keeper.renew, daemon=True)
        renewing.start()
        wait_until(renewed, timeout=10)
        assert renewing.is_alive(), "the keeper beat on a campaign row the batch holds"
        batch.execute(text("SET LOCAL lock_timeout = '5s'"))
        batch.execute(update(Delivery).where(Delivery.id.in_(ids)).values(status="sent"))
        batch.commit()
    renewing.join(timeout=10)
    assert not renewing.is_alive()
    statuses = set(db.scalars(select(Delivery.status).where(Delivery.id.in_(ids))))
    assert statuses == {"sent"}


def test_a_ledger_row_names_an_edition_of_its_own_campaign_and_issue(
    app: Flask, db: Session
) -> None:
    """One foreign key ties a delivery to its edition, campaign and issue together: a row
    whose edition is another campaign's, or whose issue is not its campaign's, is refused by
    that key (the rows are skipped ones, which the one-copy-per-reader index lets by), and
    deleting a campaign deletes its editions and its ledger."""
    campaign_id = _planned(app, db, 3)
    row = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).first()
    assert row is not None
    other_issue = Issue(number=9100, title="Other", status="sent", content_hash="")
    db.add(other_issue)
    db.flush()
    of_other_issue = Campaign(issue_id=other_issue.id, status="done", created_by="e@x.test")
    of_same_issue = Campaign(issue_id=row.issue_id, status="done", created_by="e@x.test")
    db.add_all([of_other_issue, of_same_issue])
    db.commit()

    def add(campaign: int, issue: int) -> None:
        with db.begin_nested():
            db.add(
                Delivery(
                    campaign_id=campaign,
                    issue_id=issue,
                    subscriber_id=row.subscriber_id,
                    segment_id=row.segment_id,
                    status="skipped",
                    skip_reason="cancelled",
                )
            )

    for campaign, issue in (
        (of_other_issue.id, other_issue.id),
        (of_same_issue.id, row.issue_id),
        (campaign_id, other_issue.id),
    ):
        with pytest.raises(IntegrityError) as refused:
            add(campaign, issue)
        assert "foreign key" in str(refused.value).lower(), refused.value
    add(campaign_id, row.issue_id)  # the same row with its own campaign and issue is taken
    db.commit()
    db.execute(delete(Campaign).where(Campaign.id == campaign_id))
    db.commit()
    left = [
        db.scalar(select(func.count()).select_from(table).where(table.c.campaign_id == campaign_id))
        for table in (Delivery.__table__, CampaignSegment.__table__)
    ]
    assert left == [0, 0]


def test_the_beat_requeues_dead_claims_and_leaves_a_long_backlog_alone(
    app: Flask, db: Session
) -> None:
    """A batch died holding two claims, and the rest of the audience has waited in the queue
    longer than the outbox's grace period: the beat gives the two back to the queue, tries
    counted, and does not touch the backlog. It used to load every queued row and rewrite its
    due time, every grace period, which at 100,000 readers was 10 MB in a worker and as many
    row versions in the ledger."""
    campaign_id = _planned(app, db, 6)
    ids = list(
        db.scalars(
            select(Delivery.id).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
        )
    )
    lease = timedelta(seconds=int(app.config["SEND_CLAIM_LEASE_SECONDS"]))
    long_ago = utcnow() - delivery.QUEUED_GRACE - timedelta(minutes=10)
    db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(next_attempt_at=long_ago))
    db.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids[:2]))
        .values(status="sending", attempts=1, claimed_at=utcnow() - lease - timedelta(minutes=1))
    )
    # A batch of the campaign is alive, so the beat does not set new batches going.
    db.execute(update(Campaign).where(Campaign.id == campaign_id).values(heartbeat_at=utcnow()))
    db.commit()
    with app.app_context():
        assert tasks._recover(lease) == []
        core_db.session().close()
    db.expire_all()
    rows = db.execute(
        select(Delivery.id, Delivery.status, Delivery.attempts, Delivery.next_attempt_at)
        .where(Delivery.campaign_id == campaign_id)
        .order_by(Delivery.id)
    ).all()
    assert [(row.status, row.attempts) for row in rows] == [("queued", 1)] * 2 + [("queued", 0)] * 4
    # Every due time is the one planning gave, dead claims included: they are due at once.
    assert {row.next_attempt_at for row in rows} == {long_ago}
