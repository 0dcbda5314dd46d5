"""The latest issue readers received, for the welcome email (registered in core.registry).

The welcome email (subscribers) links to it without importing campaigns: it asks the registry.
The reader's own edition is preferred (its subject and web address); when nobody of that
edition was in the last send, another edition in the reader's language, then any.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import CampaignSegment


def latest_issue(
    db_session: Session, topics: tuple[str, ...], format: str, locale: str
) -> dict[str, str] | None:
    """{"subject", "url"} of the last finished send's segment closest to the reader's."""
    campaign = db_session.scalars(
        select(Campaign)
        .where(Campaign.status == "done", Campaign.finished_at.is_not(None))
        .order_by(Campaign.finished_at.desc(), Campaign.id.desc())
        .limit(1)
    ).first()
    if campaign is None:
        return None
    segments = db_session.scalars(
        select(CampaignSegment)
        .where(CampaignSegment.campaign_id == campaign.id)
        .order_by(CampaignSegment.id)
    ).all()

    def closeness(segment: CampaignSegment) -> tuple[bool, bool, bool]:
        return (
            segment.locale != locale,
            tuple(segment.topics) != tuple(sorted(topics)) or segment.format != format,
            segment.format != format,
        )

    if not segments:
        return None
    best = min(segments, key=closeness)
    # The web copy in the reader's language, whichever edition's address it is.
    url = best.view_online_url.split("?", 1)[0] + f"?lang={locale}"
    return {"subject": best.subject, "url": url}
