"""The audience: subscribers, the consent record of every change, and the suppression list.

An address is identified by ``email_hash`` (SHA-256 of the lower-cased normalised address):
it is the unique key of a subscriber, and the only thing a suppression keeps, so that erasing
a person's data never lifts the block on their address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from core.db import Base
from core.db import TopicSet
from core.db import UTCDateTime
from core.db import utcnow

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
FORMATS = ("full", "digest")
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "manual")
IMPORT_STATUSES = ("preview", "queued", "running", "done", "failed")


class Subscriber(Base):
    __tablename__ = "subscriber"
    __table_args__ = (
        Index("ix_subscriber_status_member", "status", "member"),
        # SQLite would otherwise give a deleted reader's id to the next one, who would then
        # inherit their ledger rows (which have no foreign key; PostgreSQL's sequence never
        # gives an id twice).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # As it is sent to: domain lower-cased and in IDNA form, local part as typed.
    email: Mapped[str] = mapped_column(String(254))
    # NULL once erased, so that the address can sign up again unless it is suppressed.
    email_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    organisation: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(5), default="zh")
    status: Mapped[str] = mapped_column(String(12), default="pending")
    format: Mapped[str] = mapped_column(String(10), default="full")
    topics: Mapped[tuple[str, ...]] = mapped_column(TopicSet, default=())
    member: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Carried by confirmation links and replaced on use, so that each link works once.
    confirm_nonce: Mapped[str] = mapped_column(String(32))
    # Carried by preference and unsubscribe links; replaced on erase, which kills old links.
    link_nonce: Mapped[str] = mapped_column(String(32))


class ConsentEvent(Base):
    """One change of a subscription: who asked, from where, on which form, and what changed.

    Kept after unsubscribing; after an erase the IP, user agent and personal values are removed.
    """

    __tablename__ = "consent_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # subscribe, confirm, preferences, unsubscribe, resubscribe, import, member, suppress, erase
    action: Mapped[str] = mapped_column(String(20))
    # web, email-link, one-click, editor, import, bounce
    source: Mapped[str] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    form_version: Mapped[str | None] = mapped_column(String(40))
    # {field: [old, new]} for every field the event changed.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str | None] = mapped_column(String(254))  # the editor, when one acted
    note: Mapped[str | None] = mapped_column(String(300))


class Suppression(Base):
    """An address that must not receive mail, whatever a later signup or import says."""

    __tablename__ = "suppression"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(String(300))


class ImportJob(Base):
    """A CSV upload: previewed first, then run by a worker in batches that each commit."""

    __tablename__ = "subscriber_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254))
    filename: Mapped[str] = mapped_column(String(200))
    # The decoded file; kept until the import is done, then cleared (it holds personal data).
    content: Mapped[str] = mapped_column(Text)
    consent_source: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default="preview")
    total_rows: Mapped[int] = mapped_column(default=0)
    valid_rows: Mapped[int] = mapped_column(default=0)
    # Data lines handled so far; a redelivered task resumes after them.
    processed_rows: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # What was skipped and why, for the finished page: [line, reason, value] (the value only
    # for lines with an error; at most subscribers.imports.REPORT_LIMIT entries).
    skipped_report: Mapped[list[Any]] = mapped_column(JSON, default=list)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignupRequest(Base):
    """A signup or an email-me-my-link request, written by the web request before anything else.

    Every request writes exactly this row, whatever state its address is in (so the page and
    its timing tell nothing), and a worker decides what it calls for and deletes it in the
    same transaction. A broker that is down loses nothing: the beat enqueues rows left waiting.
    """

    __tablename__ = "signup_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    # When the request was made, or last enqueued again by the beat (which looks for rows
    # older than its grace).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # signup or link
    kind: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(254))
    # The form's choices (signup only) and the consent evidence, as service.Choices/Consent.
    choices: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    consent: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
