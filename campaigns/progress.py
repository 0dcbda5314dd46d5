"""What editors see of a campaign: counts from the ledger, rate, time to finish, last errors.

Everything is counted from ``Delivery`` rows (the truth), with one grouped query per view;
nothing is kept in Redis or in the campaign row that could disagree with the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from core.db import utcnow
from subscribers.models import Subscriber

# Statuses that are still to be settled, and how the page groups every status.
WAITING = ("queued", "sending", "retry")
RATE_WINDOW = timedelta(seconds=60)


@dataclass
class Counts:
    """Deliveries by status; ``total`` is every planned reader."""

    by_status: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def waiting(self) -> int:
        return sum(self[status] for status in WAITING)

    @property
    def settled(self) -> int:
        return self.total - self.waiting

    @property
    def percent(self) -> int:
        """How much of the campaign is settled, 0–100 (100 for an empty one)."""
        return 100 if not self.total else int(100 * self.settled / self.total)


@dataclass(frozen=True)
class SegmentCounts:
    segment: CampaignSegment
    counts: Counts


@dataclass(frozen=True)
class Failure:
    """A delivery that did not go as planned, with what the relay said."""

    delivery_id: int
    # None for a reader deleted by hand (the ledger keeps their rows).
    email: str | None
    status: str
    attempts: int
    smtp_code: int | None
    smtp_reply: str | None
    at: datetime | None


@dataclass(frozen=True)
class Progress:
    campaign: Campaign
    counts: Counts
    per_minute: int
    eta: datetime | None
    segments: list[SegmentCounts]
    errors: list[Failure]


def counts(db_session: Session, campaign_id: int) -> Counts:
    rows = db_session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    )
    return Counts({str(status): int(number) for status, number in rows})


def segment_counts(db_session: Session, campaign_id: int) -> list[SegmentCounts]:
    """Each frozen edition of the campaign with its deliveries by status."""
    segments = {
        row.id: row
        for row in db_session.scalars(
            select(CampaignSegment)
            .where(CampaignSegment.campaign_id == campaign_id)
            .order_by(CampaignSegment.locale, CampaignSegment.format, CampaignSegment.topics)
        )
    }
    found: dict[int, Counts] = {segment_id: Counts() for segment_id in segments}
    rows = db_session.execute(
        select(Delivery.segment_id, Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.segment_id, Delivery.status)
    )
    for segment_id, status, number in rows:
        found[segment_id].by_status[str(status)] = int(number)
    return [SegmentCounts(segments[segment_id], found[segment_id]) for segment_id in segments]


def sent_per_minute(db_session: Session, campaign_id: int) -> int:
    """Messages the relay took in the last minute."""
    since = utcnow() - RATE_WINDOW
    query = select(func.count()).where(
        Delivery.campaign_id == campaign_id, Delivery.status == "sent", Delivery.sent_at >= since
    )
    return int(db_session.scalar(query) or 0)


def failures(db_session: Session, campaign_id: int, limit: int | None = 10) -> list[Failure]:
    """The latest failed, bounced and retried deliveries, newest first (all when no limit)."""
    query = (
        select(Delivery, Subscriber.email)
        # Outer: a reader deleted by hand still has their failures listed, as the counts do.
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.status.in_(("failed", "bounced", "retry")),
        )
        .order_by(Delivery.claimed_at.desc(), Delivery.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        Failure(
            row.id, email, row.status, row.attempts, row.smtp_code, row.smtp_reply, row.claimed_at
        )
        for row, email in db_session.execute(query)
    ]


def progress(db_session: Session, campaign: Campaign) -> Progress:
    """Everything the progress page shows, from the ledger."""
    found = counts(db_session, campaign.id)
    rate = sent_per_minute(db_session, campaign.id)
    eta = None
    if campaign.status == "running" and rate and found.waiting:
        eta = utcnow() + timedelta(minutes=found.waiting / rate)
    return Progress(
        campaign=campaign,
        counts=found,
        per_minute=rate,
        eta=eta,
        segments=segment_counts(db_session, campaign.id),
        errors=failures(db_session, campaign.id),
    )
