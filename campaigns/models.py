"""What a send of an issue stores: the campaign, its frozen editions, and the ledger.

The ledger (``Delivery``) is the truth about every recipient: one row per (issue, reader),
written when the campaign starts, each with the edition the reader gets and, once sent, the
relay's answer. Redis only rings the bell; it may lose everything and nobody is lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from typing import ClassVar

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.db import Base
from core.db import TopicSet
from core.db import UTCDateTime
from core.db import utcnow
from mailer.delivery import DeliveryState

# draft (waiting for approval) → scheduled → running ⇄ paused → done; or cancelled; or
# expired, when a schedule's "not after" passed before it could start.
CAMPAIGN_STATUSES = ("draft", "scheduled", "running", "paused", "done", "cancelled", "expired")
# A campaign in one of these still owns its issue: no second one may start beside it.
OPEN_STATUSES = ("draft", "scheduled", "running", "paused")
DELIVERY_STATUSES = ("queued", "sending", "sent", "retry", "failed", "bounced", "skipped")
# Settled: nothing more will happen to the row.
SETTLED = ("sent", "failed", "bounced", "skipped")
SKIP_REASONS = ("unsubscribed", "suppressed", "erased", "cancelled", "inactive")


class Campaign(Base):
    """One send of an issue: to its whole audience, or to readers who joined since."""

    __tablename__ = "campaign"
    __table_args__ = (
        # At most one open campaign per issue: two clicks, two beats or two web servers
        # starting the same send make one campaign, never two.
        Index(
            "uq_campaign_open_issue",
            "issue_id",
            unique=True,
            sqlite_where=text("status IN ('draft', 'scheduled', 'running', 'paused')"),
            postgresql_where=text("status IN ('draft', 'scheduled', 'running', 'paused')"),
        ),
        # What the editions' foreign key points at: an edition's issue is its campaign's.
        UniqueConstraint("id", "issue_id", name="uq_campaign_id_issue_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    # Only readers without a delivery of this issue yet (a send to new subscribers).
    new_subscribers: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # With NEWSLETTER_SEND_APPROVAL an editor's send waits as a draft for an administrator.
    approved_by: Mapped[str | None] = mapped_column(String(254))
    # The content version of the issue when the send was asked for (and again when it was
    # approved): a send never starts with content changed since then.
    issue_version: Mapped[int | None]
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by: Mapped[str | None] = mapped_column(String(254))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the campaign paused (a message id and values, shown translated), and when.
    paused_reason: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Relay failures in a row; reset by any message the relay takes.
    relay_failures: Mapped[int] = mapped_column(default=0)
    # When a batch last claimed or recorded rows: the beat restarts a campaign gone quiet.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planned: Mapped[int] = mapped_column(default=0)
    plan_seconds: Mapped[float | None]
    freeze_seconds: Mapped[float | None]


class CampaignSegment(Base):
    """One edition of the issue as rendered for the campaign, frozen: every worker, every
    retry and the report use these bytes. Slot placeholders are still in them."""

    __tablename__ = "campaign_segment"
    __table_args__ = (
        UniqueConstraint("campaign_id", "topics", "format", "locale"),
        ForeignKeyConstraint(
            ["campaign_id", "issue_id"], ["campaign.id", "campaign.issue_id"], ondelete="CASCADE"
        ),
        # What the ledger's one foreign key to its edition, campaign and issue points at.
        UniqueConstraint(
            "id", "campaign_id", "issue_id", name="uq_campaign_segment_id_campaign_issue"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int]
    # The campaign's issue, carried here so that a delivery names its edition, campaign and
    # issue with one foreign key (see Delivery).
    issue_id: Mapped[int]
    topics: Mapped[tuple[str, ...]] = mapped_column(TopicSet)
    format: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(400))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str] = mapped_column(String(32))
    greetings: Mapped[list[str]] = mapped_column(JSON)
    view_online_url: Mapped[str] = mapped_column(String(500))
    # [[number, title], ...] of the articles shortened to fit the size budget.
    shortened: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    articles: Mapped[list[int]] = mapped_column(JSON, default=list)
    html_bytes: Mapped[int]


# A row that has its outcome. Written out, not bound: a partial index is used only where
# the planner can see that the query asks for what the index holds, which it cannot for a
# prepared statement's parameters.
OUTCOME = "status IN ('sent', 'failed', 'bounced')"


class Delivery(DeliveryState, Base):
    """One reader's copy of one issue: planned, claimed, sent (or not), and why."""

    __tablename__ = "delivery"
    __table_args__ = (
        # Nobody receives one issue twice, across campaigns: one live row per (issue, reader).
        # A row skipped (the reader left, or the send was cancelled) does not count, so a
        # later send to new subscribers can still reach a reader it never reached.
        Index(
            "uq_delivery_issue_subscriber",
            "issue_id",
            "subscriber_id",
            unique=True,
            sqlite_where=text("status != 'skipped'"),
            postgresql_where=text("status != 'skipped'"),
        ),
        Index("ix_delivery_campaign_status", "campaign_id", "status", "next_attempt_at"),
        # The progress page's rate: messages sent in the last minute. Only sent rows: a
        # planned row has no place in it, and planning need not write it.
        Index(
            "ix_delivery_campaign_sent",
            "campaign_id",
            "sent_at",
            sqlite_where=text("sent_at IS NOT NULL"),
            postgresql_where=text("sent_at IS NOT NULL"),
        ),
        # The failure rate that pauses a send, over the latest outcomes: a walk back along
        # the settled rows, where without it each batch sorted every row sent so far (31 ms
        # at 90,000, so a send was quadratic in its audience).
        Index(
            "ix_delivery_campaign_outcome",
            "campaign_id",
            "claimed_at",
            "id",
            sqlite_where=text(OUTCOME),
            postgresql_where=text(OUTCOME),
        ),
        # One foreign key for the edition, the campaign and the issue, which must agree: one
        # check per planned row for the three instead of three (with the reader's, the checks
        # were 60 % of planning's INSERT at 100,000 readers; the reader's is gone too, see
        # subscriber_id). Deleting a campaign deletes its editions and its ledger.
        ForeignKeyConstraint(
            ["segment_id", "campaign_id", "issue_id"],
            ["campaign_segment.id", "campaign_segment.campaign_id", "campaign_segment.issue_id"],
            ondelete="CASCADE",
        ),
    )

    retry_status: ClassVar[str] = "retry"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int]
    issue_id: Mapped[int]
    # Not a foreign key. Readers are never deleted (erasure keeps the row without the
    # person's data), and the ledger must outlive one removed by hand rather than vanish with
    # it, as a cascade would have it; a batch skips a row whose reader is gone. The key's
    # check cost planning 0.45 s of 1.63 at 100,000 readers, and took a lock on every reader's
    # row (FOR KEY SHARE), writing each one's tuple header at every send.
    subscriber_id: Mapped[int] = mapped_column(index=True)
    segment_id: Mapped[int]
    # The receiving domain, for per-provider rates and deferrals.
    domain: Mapped[str] = mapped_column(String(254), default="")
    skip_reason: Mapped[str | None] = mapped_column(String(20))
