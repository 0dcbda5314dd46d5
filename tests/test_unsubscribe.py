"""Leaving: the page with one button, the RFC 8058 one-click POST, and coming back."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.models import ConsentEvent
from subscribers.models import Suppression
from subscribers.service import Consent
from subscribers.service import email_hash
from subscribers.service import erase
from tests.conftest import SmtpSink
from tests.helpers import csrf_token
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import link_in
from tests.test_subscribe import path_of
from tests.test_subscribe import sent_to


class _YearsAgoSigner(TimestampSigner):
    """Signs as if three years ago, like a link in a reader's oldest email."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 3 * 365 * 86_400


def _status(db: Session, address: str) -> str:
    subscriber = fresh(db, address)
    assert subscriber is not None
    return subscriber.status


def test_get_on_the_unsubscribe_link_changes_nothing(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Opening the link (as a mail scanner would, twice) shows one button and changes nothing."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "unsubscribe", subscriber)
    for _ in range(2):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and page.count('type="submit"') == 1
        assert "退订" in page
    assert _status(db, "a@example.com") == "active"
    assert db.scalars(select(ConsentEvent)).all() == []


def test_the_button_unsubscribes_and_offers_a_way_back(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Pressing the button unsubscribes, records it, and the page after offers to resubscribe."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "unsubscribe", subscriber)
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code == 302
    assert _status(db, "a@example.com") == "unsubscribed"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "您已退订" in page and "重新订阅" in page
    event = db.scalars(select(ConsentEvent)).one()
    assert (event.action, event.source) == ("unsubscribe", "web")
    assert event.changes["status"] == ["active", "unsubscribed"]


def test_the_form_post_without_csrf_token_is_refused(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Only the one-click body is exempt from CSRF: any other POST without a token changes nothing."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "unsubscribe", subscriber)
    for body in ({}, {"List-Unsubscribe": "Yes"}):
        response = client.post(path, data=body)
        assert response.status_code == 400
        assert "此表单已过期" in response.get_data(as_text=True)
    assert _status(db, "a@example.com") == "active"


def test_one_click_post_unsubscribes_without_a_session(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """RFC 8058: a bare POST of List-Unsubscribe=One-Click to the header's URL unsubscribes at once."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "unsubscribe", subscriber)
    response = client.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        headers={"User-Agent": "MailProvider-Unsubscriber"},
    )
    assert response.status_code == 200
    assert _status(db, "a@example.com") == "unsubscribed"
    event = db.scalars(select(ConsentEvent)).one()
    assert (event.source, event.user_agent) == ("one-click", "MailProvider-Unsubscriber")
    # A provider that repeats the POST changes nothing more.
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and len(db.scalars(select(ConsentEvent)).all()) == 1


def test_one_click_as_multipart_form_data_works_too(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """RFC 8058 allows multipart/form-data as well as urlencoded bodies."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "unsubscribe", subscriber)
    response = client.post(
        path, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
    )
    assert response.status_code == 200 and _status(db, "a@example.com") == "unsubscribed"


def test_one_click_with_a_tampered_token_changes_nothing(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A forged or cross-purpose token is refused with the friendly page, even with one-click."""
    subscriber = add_subscriber(db, "a@example.com")
    preferences = path_of(app, "preferences", subscriber).replace("/preferences/", "/unsubscribe/")
    head, signature = path_of(app, "unsubscribe", subscriber).rsplit(".", 1)
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for bad in (preferences, tampered):
        response = client.post(bad, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400 and "链接无效" in response.get_data(as_text=True)
    assert _status(db, "a@example.com") == "active"


def test_resubscribe_from_an_old_link_sends_a_fresh_confirmation(
    app: Flask, client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """Pressing "subscribe again" (perhaps in an old or forwarded email) re-adds nobody at once:
    a confirmation goes to the address, and only its link brings the reader back."""
    subscriber = add_subscriber(db, "a@example.com", status="unsubscribed")
    path = path_of(app, "unsubscribe", subscriber)
    token = csrf_token(client, path)
    response = client.post(
        path.replace("/unsubscribe/", "/resubscribe/"), data={"csrf_token": token}
    )
    assert response.status_code == 200 and "请查收邮件" in response.get_data(as_text=True)
    assert _status(db, "a@example.com") == "unsubscribed"
    assert db.scalars(select(ConsentEvent.action)).all() == ["resubscribe"]
    [message] = sent_to(smtp_sink, "a@example.com")
    confirm = link_in(message, "confirm")
    client.post(confirm, data={"csrf_token": csrf_token(client, confirm)})
    assert _status(db, "a@example.com") == "active"


def test_one_click_links_never_expire(app: Flask, client: FlaskClient, db: Session) -> None:
    """RFC 8058: an unsubscribe link signed three years ago still unsubscribes with one click."""
    subscriber = add_subscriber(db, "a@example.com")
    serializer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="newsletter.unsubscribe", signer=_YearsAgoSigner
    )
    old = serializer.dumps([subscriber.id, subscriber.link_nonce])
    response = client.post(f"/unsubscribe/{old}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and _status(db, "a@example.com") == "unsubscribed"


def test_one_click_of_an_erased_reader_is_answered_as_done(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A provider's one-click POST for a reader whose data was erased gets 200 (nothing is sent
    there any more), not an error that looks like a broken unsubscribe; the page still opens nothing."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "unsubscribe", subscriber)
    with app.app_context():
        erase(db, subscriber, Consent(source="editor"), block=False)
        db.commit()
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "您已退订" in page and "重新订阅" not in page
    assert client.get(path).status_code == 400


def test_suppressed_address_cannot_come_back_through_the_page(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A complained address sees no resubscribe button, and a forced POST is refused."""
    subscriber = add_subscriber(db, "a@example.com", status="complained")
    db.add(Suppression(email_hash=email_hash("a@example.com"), reason="complaint"))
    db.commit()
    path = path_of(app, "unsubscribe", subscriber)
    page = client.get(path).get_data(as_text=True)
    assert "重新订阅" not in page
    token = csrf_token(client, "/subscribe")
    response = client.post(
        path.replace("/unsubscribe/", "/resubscribe/"), data={"csrf_token": token}
    )
    assert response.status_code == 409 and "无法接收" in response.get_data(as_text=True)
    assert _status(db, "a@example.com") == "complained"


def test_every_link_works_only_for_its_own_purpose(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Each signed token opens its own page only; over-long tokens are refused; nothing changes."""
    subscriber = add_subscriber(db, "a@example.com")
    tokens = {
        kind: path_of(app, kind, subscriber).rsplit("/", 1)[1]
        for kind in ("confirm", "preferences", "unsubscribe")
    }
    for kind, token in tokens.items():
        for route in ("confirm", "preferences", "unsubscribe", "resubscribe"):
            if route == kind or (kind, route) == ("unsubscribe", "resubscribe"):
                continue  # the page after leaving resubscribes with the unsubscribe token
            form = {"csrf_token": csrf_token(client, "/subscribe"), "List-Unsubscribe": "One-Click"}
            response = client.post(f"/{route}/{token}", data=form)
            assert response.status_code == 400, (kind, route)
    assert client.get("/preferences/" + "A" * 100_000).status_code == 400
    assert _status(db, "a@example.com") == "active"
    assert db.scalars(select(ConsentEvent)).all() == []


def test_one_click_by_a_blocked_address_offers_no_way_back(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """The page after a one-click POST offers to resubscribe only when that could work."""
    subscriber = add_subscriber(db, "a@example.com")
    db.add(Suppression(email_hash=email_hash("a@example.com"), reason="manual"))
    db.commit()
    path = path_of(app, "unsubscribe", subscriber)
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "重新订阅" not in response.get_data(as_text=True)
    assert _status(db, "a@example.com") == "unsubscribed"


def test_the_preferences_page_of_a_bounced_address_offers_no_way_back(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A bounced reader's preferences page says they receive nothing, without a button that fails."""
    subscriber = add_subscriber(db, "a@example.com", status="bounced")
    page = client.get(path_of(app, "preferences", subscriber)).get_data(as_text=True)
    assert "不会再收到" in page and "重新订阅" not in page
