"""How a campaign stops by itself: paused with a reason an editor can act on (relay
failures, too many failed messages), or done once every delivery is settled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import Delivery
from core.db import utcnow
from core.i18n import N_
from issues.models import Issue

UNSETTLED = ("queued", "sending", "retry")
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
            .where(
                Delivery.campaign_id == campaign_id,
                Delivery.status.in_(("sent", "failed", "bounced")),
            )
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
