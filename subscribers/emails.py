"""The emails this package sends through the outbox: built at send time, links signed then.

Imported by ``subscribers.tasks`` so that a worker has the builders registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from core import i18n
from core import registry
from core.i18n import N_
from mailer import outbox
from mailer.message import build_message
from mailer.message import recipient_mailbox
from mailer.models import OutboxMessage
from mailer.render import render_pair
from mailer.render import topic_names
from subscribers import links
from subscribers.models import Subscriber


def _subscriber(db_session: Session, message: OutboxMessage) -> Subscriber:
    subscriber = db_session.get(Subscriber, message.params.get("subscriber_id"))
    if subscriber is None:
        raise LookupError(f"outbox message {message.id} names no subscriber")
    return subscriber


def recipient(subscriber: Subscriber) -> str:
    """The To value, by the one rule every email follows (``mailer.message.recipient_mailbox``).

    A name stored before names were checked this strictly is cleaned as in the greeting, or
    left out if it still cannot sit in a header, so the message can always be sent.
    """
    return recipient_mailbox(subscriber.name, subscriber.email)


def sender_lines(config: Mapping[str, Any]) -> list[str]:
    """Who sends the email, for its footer: the association's name and postal address lines."""
    address = str(config.get("POSTAL_ADDRESS") or "").splitlines()
    name = config.get("ORGANISATION_NAME") or config["MAIL_FROM_NAME"]
    return [str(name), *(line.strip() for line in address if line.strip())]


def _notice(
    template: str,
    subject: str,
    subscriber: Subscriber,
    message: OutboxMessage,
    config: Mapping[str, Any],
    **context: Any,
) -> EmailMessage:
    """A notice to one reader in their language: ``subject`` is a message id translated here."""
    html, text = render_pair(
        template,
        message.locale,
        reader_name=subscriber.name or "",
        list_name=config["MAIL_FROM_NAME"],
        base_url=config["BASE_URL"],
        sender_lines=sender_lines(config),
        **context,
    )
    translated = i18n.translations(message.locale).gettext(subject) % {
        "list": config["MAIL_FROM_NAME"]
    }
    headers = outbox.standard_headers(config, subscriber.email, translated, subscriber.name)
    return build_message(headers, text, html)


@outbox.builder("confirm")
def build_confirm(
    db_session: Session, message: OutboxMessage, config: Mapping[str, Any]
) -> EmailMessage:
    """The double opt-in email: one link that activates the subscription."""
    subscriber = _subscriber(db_session, message)
    return _notice(
        "confirm",
        N_("Please confirm your subscription"),
        subscriber,
        message,
        config,
        confirm_url=links.confirm_url(subscriber),
        days=config["TOKEN_MAX_AGE_DAYS"],
    )


@outbox.builder("preferences_link")
def build_preferences_link(
    db_session: Session, message: OutboxMessage, config: Mapping[str, Any]
) -> EmailMessage:
    """The reader's own preferences link, asked for or sent when an active reader signs up again."""
    subscriber = _subscriber(db_session, message)
    return _notice(
        "preferences_link",
        N_("Your link to change your newsletter preferences"),
        subscriber,
        message,
        config,
        already=message.params.get("reason") == "already_subscribed",
        preferences_url=links.preferences_url(subscriber),
        unsubscribe_url=links.unsubscribe_url(subscriber),
    )


@outbox.builder("welcome")
def build_welcome(
    db_session: Session, message: OutboxMessage, config: Mapping[str, Any]
) -> EmailMessage:
    """After confirming: what the reader will get, their preferences link and, once an issue
    has been sent, a link to the latest one (asked of the registry: campaigns sits above)."""
    subscriber = _subscriber(db_session, message)
    latest = registry.latest_issue(
        current_app, db_session, tuple(subscriber.topics), subscriber.format, message.locale
    )
    return _notice(
        "welcome",
        N_("Welcome to %(list)s"),
        subscriber,
        message,
        config,
        topics=topic_names(subscriber.topics, message.locale, config["TOPICS"]),
        digest=subscriber.format == "digest",
        latest=latest,
        preferences_url=links.preferences_url(subscriber),
        unsubscribe_url=links.unsubscribe_url(subscriber),
    )
