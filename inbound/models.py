"""The mail event ledger: every bounce, complaint, mailed unsubscribe and auto-reply, once.

A row is written by ``inbound.events.record`` and never changed afterwards (but for the effect it
had, set in the same transaction). ``(source, key)`` is unique: the same report or webhook
delivered twice is one row, and its effect is applied once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.db import Base
from core.db import UTCDateTime
from core.db import utcnow


class MailEventRow(Base):
    """One thing a receiving server or provider told us about a message we sent."""

    __tablename__ = "mail_event"
    __table_args__ = (
        UniqueConstraint("source", "key", name="uq_mail_event_source_key"),
        # A reader's soft bounces over the last days, and a reader's page.
        Index("ix_mail_event_subscriber_kind", "subscriber_id", "kind", "occurred_at"),
        # A campaign report's counts.
        Index("ix_mail_event_campaign_kind", "campaign_id", "kind"),
        # The editor home's counts over the last days.
        Index("ix_mail_event_kind_recorded", "kind", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # hard_bounce, soft_bounce, complaint, unsubscribe, auto_reply (inbound.events.KINDS)
    kind: Mapped[str] = mapped_column(String(12))
    # dsn, arf, mailto, ses, mailgun, postmark, sendgrid (inbound.events.SOURCES)
    source: Mapped[str] = mapped_column(String(12))
    key: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the receiving server or provider said, as it said it (at most 1000 characters).
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str | None] = mapped_column(String(12))  # enhanced status code, 5.1.1
    # What the event was matched to; all NULL for an event that matched nobody.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    # suppressed, soft_counted, unsubscribed, ignored, unmatched (inbound.events.EFFECTS)
    effect: Mapped[str] = mapped_column(String(12), default="")
