"""Signed links in emails: confirm, preferences, unsubscribe, each with its own salt.

A token carries the subscriber's id and a nonce stored on the row. Confirmation tokens expire
(``TOKEN_MAX_AGE_DAYS``) and their nonce is replaced on use, so each works once; preference and
unsubscribe tokens never expire (they sit in old emails, and RFC 8058 one-click unsubscribe
must keep working for good) and are refused only once the subscriber is erased.
Tokens are made when an email is built and are never stored.

Each link ends in ``?lang=`` with the reader's language, so the page it opens (and the
pages after it, by the cookie ``?lang=`` sets) speaks the language the reader chose.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from core import tokens
from core.config import LOCALES
from subscribers.models import Subscriber


class LinkError(Exception):
    """The link cannot be used: ``reason`` is invalid, expired, used or erased."""

    def __init__(self, reason: str, subscriber: Subscriber | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # Set for a used confirmation link: its page says whether the subscription is active.
        self.subscriber = subscriber


def _absolute(path: str, subscriber: Subscriber) -> str:
    """The link on this site, in the reader's language (an unknown one is left out)."""
    url = str(current_app.config["BASE_URL"]).rstrip("/") + path
    return f"{url}?lang={subscriber.locale}" if subscriber.locale in LOCALES else url


def confirm_token(subscriber: Subscriber) -> str:
    return tokens.sign("confirm", [subscriber.id, subscriber.confirm_nonce])


def preferences_token(subscriber: Subscriber) -> str:
    return tokens.sign("preferences", [subscriber.id, subscriber.link_nonce])


def unsubscribe_token(subscriber: Subscriber) -> str:
    return tokens.sign("unsubscribe", [subscriber.id, subscriber.link_nonce])


def confirm_url(subscriber: Subscriber) -> str:
    return _absolute(f"/confirm/{confirm_token(subscriber)}", subscriber)


def preferences_url(subscriber: Subscriber) -> str:
    return _absolute(f"/preferences/{preferences_token(subscriber)}", subscriber)


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The page with one button, and the RFC 8058 one-click target of List-Unsubscribe."""
    return _absolute(f"/unsubscribe/{unsubscribe_token(subscriber)}", subscriber)


def resolve(db_session: Session, purpose: str, token: str) -> Subscriber:
    """The subscriber a link of ``purpose`` points at; raises LinkError when it cannot be used."""
    max_age = None
    if purpose == "confirm":
        max_age = int(current_app.config["TOKEN_MAX_AGE_DAYS"]) * 86_400
    try:
        payload = tokens.verify(purpose, token, max_age_seconds=max_age)
    except tokens.TokenError as error:
        raise LinkError("expired" if error.expired else "invalid") from None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        raise LinkError("invalid")
    subscriber = db_session.get(Subscriber, payload[0])
    if subscriber is None:
        raise LinkError("invalid")
    if subscriber.erased_at is not None:
        # A genuine link of a person whose data was erased: it opens nothing, but a one-click
        # unsubscribe from it is answered as done (nothing is sent to that address any more).
        raise LinkError("erased")
    nonce = subscriber.confirm_nonce if purpose == "confirm" else subscriber.link_nonce
    if payload[1] != nonce:
        if purpose == "confirm":
            raise LinkError("used", subscriber)
        raise LinkError("invalid")
    return subscriber
