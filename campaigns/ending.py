"""How a campaign stops by itself: paused with a reason an editor can act on (relay
failures, too many failed messages), or done once every delivery is settled; and what a
batch tells its task when it ends (another batch, when, or nothing more to do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.models import OUTCOME
from campaigns.models import Campaign
from campaigns.models import Delivery
from core.db import utcnow
from core.i18n import N_
from issues.models import Issue

UNSETTLED = ("queued", "sending", "retry")
WAITING = ("queued", "retry")
# The failure rate that pauses a campaign is measured over its latest outcomes.
FAILURE_WINDOW = 200
FAILURE_MINIMUM = 20


def pause_for(db_session: Session, campaign_id: int, msgid: str, **params: Any) -> None:
    """Pause a running campaign by itself, saying why in words an editor can act on."""
    db_session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "running")
        .values(
            status="paused", paused_at=utcnow(), paused_reason={"msgid": msgid, "params": params}
        )
    )
    db_session.commit()


def check_failure_rate(db_session: Session, campaign_id: int, config: Mapping[str, Any]) -> None:
    latest = list(
        db_session.scalars(
            select(Delivery.status)
            .where(Delivery.campaign_id == campaign_id, text(OUTCOME))
            .order_by(Delivery.claimed_at.desc(), Delivery.id.desc())
            .limit(FAILURE_WINDOW)
        )
    )
    if len(latest) < FAILURE_MINIMUM:
        return
    failed = sum(status != "sent" for status in latest)
    percent = 100 * failed // len(latest)
    if percent >= int(config["SEND_FAILURE_RATE_TO_PAUSE"]):
        pause_for(
            db_session,
            campaign_id,
            N_("%(percent)s%% of the last %(count)s messages failed; check the failures below."),
            percent=percent,
            count=len(latest),
        )


def finish(db_session: Session, campaign_id: int) -> bool:
    """Mark the campaign done, and its issue sent, once no delivery is unsettled."""
    unsettled = exists().where(Delivery.campaign_id == campaign_id, Delivery.status.in_(UNSETTLED))
    done = db_session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "running", ~unsettled)
        .values(status="done", finished_at=utcnow())
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    issue_id = db_session.scalar(select(Campaign.issue_id).where(Campaign.id == campaign_id))
    db_session.execute(update(Issue).where(Issue.id == issue_id).values(status="sent"))
    return True


@dataclass(frozen=True)
class BatchResult:
    """What a batch did, and whether (and after how long) another batch is worth running."""

    claimed: int
    sent: int
    more: bool
    wait: float = 0.0


def status_of(db_session: Session, campaign_id: int) -> str | None:
    """The campaign's status, read in a transaction of its own (committed)."""
    status = db_session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    db_session.commit()
    return status


def after_batch(
    db_session: Session, campaign_id: int, config: Mapping[str, Any], claimed: int, sent: int
) -> BatchResult:
    """After a batch: pause on too many failures, finish when all is settled, or say when
    the next batch is worth running."""
    check_failure_rate(db_session, campaign_id, config)
    now = utcnow()
    due = _next_due(db_session, campaign_id)
    if due is None:
        finish(db_session, campaign_id)
        sending = db_session.scalar(
            select(
                exists().where(Delivery.campaign_id == campaign_id, Delivery.status == "sending")
            )
        )
        db_session.commit()
        # Rows other batches still hold: look again when they should be settled.
        return BatchResult(claimed, sent, more=bool(sending), wait=5.0)
    db_session.commit()
    status = status_of(db_session, campaign_id)
    if status == "cancelled":
        # Rows this batch held when the send was cancelled, given back or waiting for a
        # retry since: nobody will send them now.
        skip_cancelled(db_session, campaign_id)
    if status != "running":
        return BatchResult(claimed, sent, more=False)
    due_in = max((due - now).total_seconds(), 0.0)
    return BatchResult(claimed, sent, more=True, wait=min(due_in, 30.0))


def _next_due(db_session: Session, campaign_id: int) -> datetime | None:
    """When the campaign's earliest waiting row is due; None when no row waits. One probe of
    the (campaign, status, due time) index per waiting status: counting the waiting rows
    after every batch read all of them each time."""
    found = [
        db_session.scalar(
            select(Delivery.next_attempt_at)
            .where(Delivery.campaign_id == campaign_id, Delivery.status == status)
            .order_by(Delivery.next_attempt_at)
            .limit(1)
        )
        for status in WAITING
    ]
    return min((when for when in found if when is not None), default=None)


def skip_cancelled(db_session: Session, campaign_id: int) -> int:
    """Settle the waiting rows of a cancelled campaign as skipped (cancelled); committed."""
    result = db_session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(WAITING))
        .values(status="skipped", skip_reason="cancelled")
    )
    db_session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
