"""Subscribing: the form, the task that handles it, the confirmation email, and what must not leak.

Helpers at the top are shared by the other subscriber test modules.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.message import build_message
from mailer.models import OutboxMessage
from subscribers import emails
from subscribers import links
from subscribers import service
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.conftest import SmtpSink
from tests.conftest import wait_until
from tests.helpers import csrf_token

CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def add_subscriber(db: Session, email: str, status: str = "active", **values: Any) -> Subscriber:
    """A subscriber row in ``status``, as the service would have left it."""
    subscriber = Subscriber(
        email=email,
        email_hash=service.email_hash(email),
        status=status,
        topics=values.pop("topics", ("policy", "companies", "data")),
        confirm_nonce=service.new_nonce(),
        link_nonce=service.new_nonce(),
        **values,
    )
    db.add(subscriber)
    db.commit()
    return subscriber


def path_of(app: Flask, kind: str, subscriber: Subscriber) -> str:
    """The path of a signed link (confirm, preferences, unsubscribe) for ``subscriber``."""
    with app.app_context():
        url: str = getattr(links, f"{kind}_url")(subscriber)
    return url.removeprefix(app.config["BASE_URL"])


def signup_form(client: FlaskClient, email: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "csrf_token": csrf_token(client, "/subscribe"),
        "email": email,
        "name": "",
        "organisation": "",
        "topics": ["policy", "data"],
        "format": "full",
        "language": "zh",
        "website": "",
    }
    data.update(overrides)
    return data


def fresh(db: Session, email: str) -> Subscriber | None:
    """The subscriber as the database has it now (the worker writes in its own process)."""
    db.expire_all()
    subscriber = db.scalars(
        select(Subscriber).where(Subscriber.email_hash == service.email_hash(email))
    ).one_or_none()
    db.rollback()
    return subscriber


def sent_to(smtp_sink: SmtpSink, address: str, count: int = 1) -> list[EmailMessage]:
    """Wait for ``count`` messages to ``address`` and return them."""
    return wait_until(lambda: len(smtp_sink.to(address)) >= count and smtp_sink.to(address))


def link_in(message: EmailMessage, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(r"http://newsletter\.test(/" + path + r"/[\w.\-]+)", text)
    assert match, text
    return match.group(1)


# --- the page ----------------------------------------------------------------------------


def test_subscribe_page_is_chinese_accessible_and_script_free(client: FlaskClient) -> None:
    """The form speaks Chinese by default, labels every field, and has no inline script or style."""
    page = client.get("/subscribe").get_data(as_text=True)
    assert "订阅本刊" in page and "政策" in page and "企业" in page and "数据" in page
    assert "摘要版" in page and "全文版" in page
    for field_id in ("email", "name", "organisation", "topics-0", "format-0", "language-0"):
        assert f'for="{field_id}"' in page and f'id="{field_id}"' in page
    assert "<script" not in page and "style=" not in page
    assert 'aria-hidden="true"' in page and 'tabindex="-1"' in page  # the honeypot


def test_bad_address_is_explained_next_to_the_field(client: FlaskClient, db: Session) -> None:
    """A malformed address gets a plain message tied to the field, and nothing is stored."""
    response = client.post("/subscribe", data=signup_form(client, "not an address"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'aria-describedby="email-error"' in page and 'id="email-error"' in page
    assert "这不是可以收信的邮箱地址" in page
    assert db.scalars(select(Subscriber)).all() == []


def test_no_topic_chosen_is_explained(client: FlaskClient) -> None:
    """Unticking every topic is refused with a message on the topics group."""
    response = client.post("/subscribe", data=signup_form(client, "a@example.com", topics=[]))
    page = response.get_data(as_text=True)
    assert "请至少选择一个主题" in page and 'id="topics-error"' in page


def test_missing_csrf_token_is_refused(client: FlaskClient, db: Session) -> None:
    """A POST without the CSRF token gets the friendly 400 page and changes nothing."""
    data = signup_form(client, "reader@example.com")
    del data["csrf_token"]
    response = client.post("/subscribe", data=data)
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    assert db.scalars(select(Subscriber)).all() == []


# --- the path through the worker ---------------------------------------------------------


def test_signup_sends_a_confirmation_through_the_worker(
    client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A signup becomes a pending subscriber with its consent record, and a Chinese confirmation email."""
    response = client.post(
        "/subscribe",
        data=signup_form(client, "Reader@Example.COM", name="读者", organisation="某公司"),
        headers={"User-Agent": "TestBrowser/1.0"},
    )
    assert response.status_code == 200 and "请查收邮件" in response.get_data(as_text=True)
    [message] = sent_to(smtp_sink, "Reader@example.com")
    assert "请确认您的订阅" in str(message["Subject"])
    assert "/confirm/" in link_in(message, "confirm")
    assert "<table" in message.get_body(("html",)).get_content()
    subscriber = fresh(db, "reader@example.com")
    assert subscriber is not None
    assert (subscriber.email, subscriber.status, subscriber.name) == (
        "Reader@example.com",
        "pending",
        "读者",
    )
    assert subscriber.topics == ("data", "policy") and subscriber.locale == "zh"
    [event] = db.scalars(select(ConsentEvent)).all()
    assert (event.action, event.source, event.ip, event.user_agent) == (
        "subscribe",
        "web",
        "127.0.0.1",
        "TestBrowser/1.0",
    )
    assert event.form_version and event.changes["status"] == [None, "pending"]


def _five_states(db: Session) -> dict[str, str]:
    add_subscriber(db, "pending@example.com", status="pending")
    add_subscriber(db, "active@example.com", status="active")
    add_subscriber(db, "left@example.com", status="unsubscribed")
    db.add(Suppression(email_hash=service.email_hash("blocked@example.com"), reason="complaint"))
    db.commit()
    return {
        "new": "new@example.com",
        "pending": "pending@example.com",
        "active": "active@example.com",
        "unsubscribed": "left@example.com",
        "suppressed": "blocked@example.com",
    }


def test_check_inbox_page_is_identical_in_every_state(
    app: Flask, client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """New, pending, active, unsubscribed and suppressed addresses get byte-identical pages."""
    app.config["SUBSCRIBE_RATE_LIMIT"] = "100 per hour"
    addresses = _five_states(db)
    bodies = {}
    for state, address in addresses.items():
        response = client.post("/subscribe", data=signup_form(client, address))
        assert response.status_code == 200
        bodies[state] = CSRF_VALUE.sub(r"\1\2", response.get_data(as_text=True))
    assert len(set(bodies.values())) == 1, "the page differs between address states"
    # Behind the identical page, each state got what it calls for (and the suppressed one nothing).
    sent_to(smtp_sink, "new@example.com")
    sent_to(smtp_sink, "pending@example.com")
    sent_to(smtp_sink, "left@example.com")
    [already] = sent_to(smtp_sink, "active@example.com")
    assert str(already["Subject"]) == "您的订阅设置链接"
    kinds = dict(db.execute(select(OutboxMessage.to_address, OutboxMessage.kind)).all())
    assert kinds == {
        "new@example.com": "confirm",
        "pending@example.com": "confirm",
        "left@example.com": "confirm",
        "active@example.com": "preferences_link",
    }
    assert fresh(db, "left@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert fresh(db, "blocked@example.com") is None


def test_honeypot_submission_is_answered_but_ignored(
    client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A filled honeypot gets the same page, and no subscriber or email comes of it."""
    bot = client.post("/subscribe", data=signup_form(client, "bot@example.com", website="x"))
    person = client.post("/subscribe", data=signup_form(client, "person@example.com"))
    assert bot.get_data() == person.get_data()
    sent_to(smtp_sink, "person@example.com")  # tasks run in order: the bot's would be done too
    assert fresh(db, "bot@example.com") is None
    assert smtp_sink.to("bot@example.com") == []


# --- rate limits -------------------------------------------------------------------------


def test_rate_limit_per_address_answers_429(app: Flask, client: FlaskClient) -> None:
    """The same address, however it is spelt, is refused after the per-address limit."""
    app.config["SUBSCRIBE_ADDRESS_RATE_LIMIT"] = "2 per hour"
    # The honeypot keeps these from queueing work; the limit counts every request.
    spellings = ["Someone@Example.com", " someone@EXAMPLE.com ", "someone@example.com"]
    codes = [
        client.post("/subscribe", data=signup_form(client, s, website="x")).status_code
        for s in spellings
    ]
    assert codes == [200, 200, 429]
    refused = client.post("/subscribe", data=signup_form(client, "someone@example.com"))
    assert refused.status_code == 429 and "尝试次数过多" in refused.get_data(as_text=True)
    other = client.post("/subscribe", data=signup_form(client, "other@example.com", website="x"))
    assert other.status_code == 200


def test_rate_limit_per_ip_covers_both_forms(app: Flask, client: FlaskClient) -> None:
    """One IP address is refused after its limit, counting subscribe and email-me-my-link together."""
    app.config["SUBSCRIBE_RATE_LIMIT"] = "3 per hour"
    for number in range(2):
        data = signup_form(client, f"n{number}@example.com", website="x")
        assert client.post("/subscribe", data=data).status_code == 200
    token = csrf_token(client, "/preferences/link")
    link = {"csrf_token": token, "email": "n9@example.com", "website": "x"}
    assert client.post("/preferences/link", data=link).status_code == 200
    assert client.post("/preferences/link", data=link).status_code == 429


def test_rate_limit_headers_do_not_tell_how_often_an_address_was_tried(app: Flask) -> None:
    """Another visitor's submissions of an address leave no trace in the X-RateLimit headers."""

    def headers(ip: str, address: str) -> dict[str, str]:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = ip
        response = client.post("/subscribe", data=signup_form(client, address, website="x"))
        assert response.status_code == 200
        return {k: v for k, v in response.headers.items() if k.startswith("X-RateLimit-")}

    headers("192.0.2.1", "victim@example.com")
    after_someone_else = headers("192.0.2.2", "victim@example.com")
    untouched = headers("192.0.2.3", "fresh@example.com")
    assert after_someone_else["X-RateLimit-Remaining"] == untouched["X-RateLimit-Remaining"]
    assert after_someone_else["X-RateLimit-Limit"] == untouched["X-RateLimit-Limit"]


# --- what a signup may change --------------------------------------------------------------


def test_a_signup_does_not_rewrite_the_choices_of_someone_who_left(app: Flask, db: Session) -> None:
    """Typing a departed reader's address sends them a confirmation but keeps their own choices."""
    left = add_subscriber(
        db, "left@example.com", status="unsubscribed", name="真名", locale="en", format="digest"
    )
    queued: list[int] = []
    choices = service.Choices(topics=("data",), format="full", locale="zh", name="Mallory")
    with app.app_context():
        done = service.subscribe(
            db, "left@example.com", choices, service.Consent(source="web"), queued.append
        )
        db.commit()
    assert done == "confirm_sent" and len(queued) == 1
    db.refresh(left)
    assert (left.status, left.name, left.locale, left.format) == (
        "unsubscribed",
        "真名",
        "en",
        "digest",
    )
    assert left.topics == ("companies", "data", "policy")


def test_a_suppression_covers_every_spelling_of_the_address(app: Flask, db: Session) -> None:
    """Suppressing an address as a bounce report spells it blocks the form's normalised spelling."""
    with app.app_context():
        service.suppress(db, " User@BÜCHER.de ", "hard_bounce", service.Consent(source="bounce"))
        db.commit()
        typed = service.normalise("user@bücher.de")
        assert service.is_suppressed(db, service.email_hash(typed))


# --- injection through the name ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nX-Injected: 1",
        "Eve\x00",
        "Eve\u2028Bcc: x@y.z",
        # Python's email package splits headers on these too (they are str.splitlines breaks).
        "Eve\x85Bcc: x@y.z",
        "Eve\x1cBcc: x@y.z",
    ],
)
def test_line_breaks_in_the_name_are_refused(client: FlaskClient, name: str) -> None:
    """A name that could split a header is refused on the form, with a plain message."""
    response = client.post("/subscribe", data=signup_form(client, "eve@example.com", name=name))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="name-error"' in page
    assert "请只使用文字、数字和标点" in page


def test_a_stored_name_with_a_line_break_is_cleaned_in_to(app: Flask) -> None:
    """A name kept from before the stricter check is cleaned as issue emails clean it (one
    policy, issue 8): the line break becomes a space, no header is injected, mail is built."""
    subscriber = Subscriber(email="eve@example.com", name="Eve\x85Bcc: x@example.net")
    to = emails.recipient(subscriber)
    message = build_message({"From": "n@example.org", "To": to, "Subject": "s"}, "text")
    assert to == '"Eve Bcc: x@example.net" <eve@example.com>' and message["Bcc"] is None


def test_markup_and_header_syntax_in_the_name_stay_text(
    app: Flask, client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A name with HTML and address syntax is escaped on pages and in emails, and adds no recipient."""
    name = '<b>Mal</b>"lory" <evil@example.net>, Bcc: x@example.net'
    response = client.post("/subscribe", data=signup_form(client, "mal@example.com", name=name))
    assert response.status_code == 200
    [message] = sent_to(smtp_sink, "mal@example.com")
    assert [address for _, address in getaddresses([str(message["To"])])] == ["mal@example.com"]
    assert message["Bcc"] is None and message["Cc"] is None
    assert [rcpts for _, rcpts, _ in smtp_sink.messages] == [["mal@example.com"]]
    html = message.get_body(("html",)).get_content()
    assert "<b>Mal</b>" not in html and "&lt;b&gt;Mal&lt;/b&gt;" in html
    subscriber = fresh(db, "mal@example.com")
    assert subscriber is not None and subscriber.name == name
    page = client.get(path_of(app, "preferences", subscriber)).get_data(as_text=True)
    assert "<b>Mal</b>" not in page and "&lt;b&gt;Mal&lt;/b&gt;" in page


def test_an_encoded_word_name_cannot_make_a_readers_email_unbuildable(
    app: Flask, client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """The probe's name, an encoded-word hiding CR LF and a Bcc (issue 13.7): the signup is
    stored, its confirmation is built and sent at the first try, to the address alone."""
    name = "=?utf-8?q?Bob=0D=0ABcc:_evil@evil.test?="
    response = client.post("/subscribe", data=signup_form(client, "bob@example.com", name=name))
    assert response.status_code == 200
    [message] = sent_to(smtp_sink, "bob@example.com")
    assert str(message["To"]) == "bob@example.com"
    assert message["Bcc"] is None and message["Cc"] is None
    assert [rcpts for _, rcpts, _ in smtp_sink.messages] == [["bob@example.com"]]
    with app.app_context():
        rows = db.query(OutboxMessage).filter_by(to_address="bob@example.com").all()
        assert [(row.status, row.attempts) for row in rows] == [("sent", 1)]
    subscriber = fresh(db, "bob@example.com")
    assert subscriber is not None and subscriber.name == name
