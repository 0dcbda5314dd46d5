"""Confirming and changing preferences through signed links: each link for its purpose, once where it must."""

from __future__ import annotations

import re
import time

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.models import ConsentEvent
from tests.conftest import SmtpSink
from tests.helpers import csrf_token
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import link_in
from tests.test_subscribe import path_of
from tests.test_subscribe import sent_to


def _events(db: Session) -> int:
    count = db.scalar(select(func.count()).select_from(ConsentEvent)) or 0
    db.rollback()
    return count


class _PastSigner(TimestampSigner):
    """Signs as if eight days ago, to make an expired link."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 8 * 86_400


def test_confirm_link_shows_a_button_and_only_the_post_confirms(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Opening the link changes nothing (scanners open links); pressing its button activates."""
    subscriber = add_subscriber(db, "p@example.com", status="pending")
    path = path_of(app, "confirm", subscriber)
    page = client.get(path)
    assert page.status_code == 200 and "确认订阅" in page.get_data(as_text=True)
    assert fresh(db, "p@example.com").status == "pending"  # type: ignore[union-attr]
    response = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert response.status_code == 302 and "/preferences/" in response.headers["Location"]
    after = fresh(db, "p@example.com")
    assert after is not None and after.status == "active" and after.confirmed_at is not None
    landing = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "您的订阅已确认" in landing and "订阅设置" in landing
    event = db.scalars(select(ConsentEvent).where(ConsentEvent.action == "confirm")).one()
    assert event.source == "email-link" and event.changes["status"] == ["pending", "active"]


def test_reused_confirm_link_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A confirmation link works once: the second use says it is confirmed and records nothing;
    after the reader has left, the old link is refused."""
    subscriber = add_subscriber(db, "p@example.com", status="pending")
    path = path_of(app, "confirm", subscriber)
    client.post(path, data={"csrf_token": csrf_token(client, path)})
    before = _events(db)
    again = client.get(path)
    assert again.status_code == 200 and "<h1>您的订阅已确认</h1>" in again.get_data(as_text=True)
    posted = client.post(path, data={"csrf_token": csrf_token(client, "/subscribe")})
    assert posted.status_code == 200
    assert _events(db) == before
    left = fresh(db, "p@example.com")
    assert left is not None
    left.status = "unsubscribed"
    db.merge(left)
    db.commit()
    gone = client.get(path)
    assert gone.status_code == 410 and "链接已经用过" in gone.get_data(as_text=True)
    assert fresh(db, "p@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def test_expired_confirm_link_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A confirmation link older than TOKEN_MAX_AGE_DAYS gets a friendly page; the row stays pending."""
    subscriber = add_subscriber(db, "p@example.com", status="pending")
    serializer = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="newsletter.confirm", signer=_PastSigner
    )
    old = serializer.dumps([subscriber.id, subscriber.confirm_nonce])
    response = client.get(f"/confirm/{old}")
    assert response.status_code == 410 and "链接已过期" in response.get_data(as_text=True)
    assert fresh(db, "p@example.com").status == "pending"  # type: ignore[union-attr]
    assert _events(db) == 0


def test_tampered_and_cross_purpose_links_are_refused(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A token with a changed character, or one made for another purpose, opens nothing."""
    subscriber = add_subscriber(db, "a@example.com")
    path = path_of(app, "preferences", subscriber)
    # Change the first character of the signature (the last dot-separated part).
    head, signature = path.rsplit(".", 1)
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for bad in (tampered, path.replace("/preferences/", "/confirm/"), "/preferences/nonsense"):
        response = client.get(bad)
        assert response.status_code == 400, bad
        assert "链接无效" in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)
    posted = client.post(tampered, data={"csrf_token": csrf_token(client, "/subscribe")})
    assert posted.status_code == 400 and _events(db) == 0


def test_changing_topics_shows_what_changed_and_records_it(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Saving preferences lists each change in plain words and writes one consent event."""
    subscriber = add_subscriber(db, "a@example.com", topics=("policy", "data"), locale="zh")
    path = path_of(app, "preferences", subscriber)
    data = {
        "csrf_token": csrf_token(client, path),
        "topics": ["companies"],
        "format": "digest",
        "language": "en",
        "name": "新名字",
    }
    response = client.post(path, data=data, follow_redirects=True)
    page = response.get_data(as_text=True)
    # The reader switched to English: the page after the save, and its message, are English
    # (issue 12; the Chinese wording is checked in test_reader_pages).
    assert (
        "Saved. Topics: Policy, Data → Companies; Format: Full issue → Digest; "
        "Language: 中文 → English; Name: (none) → 新名字."
    ) in page
    after = fresh(db, "a@example.com")
    assert after is not None
    assert (after.topics, after.format, after.locale, after.name) == (
        ("companies",),
        "digest",
        "en",
        "新名字",
    )
    event = db.scalars(select(ConsentEvent)).one()
    assert event.action == "preferences"
    assert event.changes["topics"] == [["data", "policy"], ["companies"]]
    # The same form again from the page the save led to (its link now carries ?lang=en; the
    # link from the email still says zh and would turn the page Chinese again).
    landed = response.request.full_path
    assert landed.endswith("lang=en")
    again = client.post(landed, data={**data, "csrf_token": csrf_token(client, landed)})
    assert "Nothing has changed" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert _events(db) == 1


def test_members_are_told_about_digests(app: Flask, client: FlaskClient, db: Session) -> None:
    """A member's preferences page says digests are their default and names the organisation."""
    member = add_subscriber(
        db, "m@example.com", member=True, organisation="芯片公司", format="digest"
    )
    page = client.get(path_of(app, "preferences", member)).get_data(as_text=True)
    assert "作为协会会员（芯片公司）" in page
    assert re.search(r'<input[^>]* checked [^>]*value="digest"', page)


def test_email_me_my_link_sends_the_preferences_link(
    app: Flask, client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """An active reader who lost the link gets it by email; an unknown address gets the same page."""
    add_subscriber(db, "a@example.com", locale="en")
    pages = []
    for address in ("A@example.com", "unknown@example.com"):
        data = {"csrf_token": csrf_token(client, "/preferences/link"), "email": address}
        pages.append(client.post("/preferences/link", data=data).get_data())
    assert pages[0] == pages[1]
    [message] = sent_to(smtp_sink, "a@example.com")
    assert "preferences" in str(message["Subject"])  # in the reader's own language
    path = link_in(message, "preferences")
    assert "Your preferences" in client.get(path + "?lang=en").get_data(as_text=True)
    unsubscribe = link_in(message, "unsubscribe")
    assert client.get(unsubscribe).status_code == 200
    assert smtp_sink.to("unknown@example.com") == []
