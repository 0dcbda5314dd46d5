"""Single emails (tests, confirmations): queue one with its cause, then claim, build, send, record.

Each kind of email has a *builder* that turns the stored row into a message at send time, so
that nothing secret (a confirmation token) is ever written to the database. Packages register
their builders with ``@builder("kind")``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.db import on_commit
from core.db import utcnow
from mailer import delivery
from mailer import dkim
from mailer.message import FixedMessage
from mailer.message import build_message
from mailer.message import make_message_id
from mailer.message import recipient_mailbox
from mailer.message import sender_headers
from mailer.models import OutboxMessage
from mailer.render import render_pair
from mailer.smtp import Accepted
from mailer.smtp import DeliveryFailure
from mailer.smtp import Relay

Builder = Callable[[Session, OutboxMessage, Mapping[str, Any]], EmailMessage]
BUILDERS: dict[str, Builder] = {}


def builder(kind: str) -> Callable[[Builder], Builder]:
    """Register the function that builds emails of ``kind``."""

    def register(function: Builder) -> Builder:
        BUILDERS[kind] = function
        return function

    return register


def queue(
    db_session: Session,
    kind: str,
    to_address: str,
    locale: str,
    enqueue: Callable[[int], None],
    **params: Any,
) -> OutboxMessage:
    """Add an outbox row; ``enqueue(id)`` runs after the caller's commit, never before."""
    if kind not in BUILDERS:
        raise ValueError(f"no builder for emails of kind {kind!r}")
    message = OutboxMessage(kind=kind, to_address=to_address, locale=locale, params=params)
    db_session.add(message)
    db_session.flush()
    message_id = message.id
    on_commit(db_session, lambda: enqueue(message_id))
    return message


def claim(db_session: Session, message_id: int) -> OutboxMessage | None:
    """Take the row for sending, or None when another run already has it or it is done."""
    claimed = db_session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "queued")
        .values(status="sending", claimed_at=utcnow(), attempts=OutboxMessage.attempts + 1)
    )
    db_session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return db_session.get(OutboxMessage, message_id, populate_existing=True)


@dataclass(frozen=True)
class Outcome:
    status: str  # "sent", "queued" (retry later) or "failed"
    code: int
    reply: str


def build(db_session: Session, message: OutboxMessage, config: Mapping[str, Any]) -> EmailMessage:
    """The finished message of a claimed row: built by its kind's builder, DKIM-signed if on."""
    email = BUILDERS[message.kind](db_session, message, config)
    if dkim.enabled(config):
        email = FixedMessage(dkim.sign(email.as_bytes(), config))
    return email


def deliver(db_session: Session, message: OutboxMessage, config: Mapping[str, Any]) -> Outcome:
    """Build (and, when configured, DKIM-sign) a claimed message, send it, record the reply.

    A message that cannot be built (a builder or signing error, the database failing while
    building) is recorded as a try and queued again, or failed after MAX_ATTEMPTS, before the
    error goes on to the caller: left claimed, it would be resent after every lease, forever.
    """
    try:
        email = build(db_session, message, config)
    except Exception as error:
        db_session.rollback()
        record_unbuilt(db_session, message, error, config)
        raise
    try:
        with Relay(config) as relay:
            result: Accepted | DeliveryFailure = relay.send(
                email, config["MAIL_FROM"], message.to_address
            )
    except DeliveryFailure as error:
        result = error
    return record(db_session, message, email, result, config)


def record(
    db_session: Session,
    message: OutboxMessage,
    email: EmailMessage,
    result: Accepted | DeliveryFailure,
    config: Mapping[str, Any],
) -> Outcome:
    """Write the outcome (mailer.delivery's policy) with the Message-ID sent, and commit."""
    message.message_id = str(email["Message-ID"])
    delivery.record(message, result, config)
    db_session.commit()
    return Outcome(message.status, result.code, result.reply)


def record_unbuilt(
    db_session: Session, message: OutboxMessage, error: Exception, config: Mapping[str, Any]
) -> None:
    """Write that the message could not be built: queued for a later try, or failed for good."""
    delivery.record_unbuilt(message, error, config)
    db_session.commit()


def stale(db_session: Session, lease: timedelta = delivery.CLAIM_LEASE) -> list[int]:
    """Outbox rows to enqueue again: dead claims and forgotten rows (mailer.delivery.stale)."""
    message_ids = delivery.stale(db_session, OutboxMessage, lease)
    db_session.commit()
    return message_ids


def standard_headers(
    config: Mapping[str, Any], to_address: str, subject: str, to_name: str | None = None
) -> dict[str, str]:
    """From, To, Subject, Message-ID and Reply-To as configured, as issue emails have them.

    To is ``recipient_mailbox``'s: a reader's name is cleaned or left out, never refused.
    """
    sender = sender_headers(config)
    headers = {
        "From": sender.pop("From"),
        "To": recipient_mailbox(to_name, to_address),
        "Subject": subject,
        "Message-ID": make_message_id(config["MESSAGE_ID_DOMAIN"]),
    }
    # Reply-To, when configured, is all that is left of the sender's headers, and comes last.
    return headers | sender


@builder("test")
def build_test(
    db_session: Session, message: OutboxMessage, config: Mapping[str, Any]
) -> EmailMessage:
    """The test email: proves the path from web or CLI through Redis and a worker to the relay."""
    context = {"base_url": config["BASE_URL"], "requested_by": message.params.get("requested_by")}
    html, text = render_pair("test", message.locale, **context)
    subject = "测试邮件 · Test email" if message.locale == "zh" else "Test email · 测试邮件"
    return build_message(standard_headers(config, message.to_address, subject), text, html)
