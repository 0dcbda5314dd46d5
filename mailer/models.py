"""What the mailer stores: the outbox of single emails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.db import Base
from core.db import UTCDateTime
from core.db import utcnow
from mailer.delivery import DeliveryState

OUTBOX_STATUSES = ("queued", "sending", "sent", "failed")


class OutboxMessage(DeliveryState, Base):
    """One single email (a test, a confirmation): what was asked, and what the relay answered.

    The row is written in the same transaction as whatever caused it and the send task is
    enqueued after the commit; the task claims the row before sending, so a redelivered
    task never sends the same message twice.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    to_address: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(5), default="zh")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
