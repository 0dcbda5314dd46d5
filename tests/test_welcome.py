"""The welcome email after confirming (issue 12): sent once, in the reader's language, with
their topics and preferences link, and a link to the latest sent issue once there is one;
the NEWSLETTER_WELCOME_EMAIL setting turns it off."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from core.db import utcnow
from mailer import outbox
from mailer.models import OutboxMessage
from subscribers import service
from subscribers.models import Subscriber
from tests.campaign_helpers import ready_seed
from tests.conftest import SmtpSink
from tests.conftest import horizontal_overflow
from tests.helpers import csrf_token
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import path_of
from tests.test_subscribe import sent_to
from tests.test_subscribe import signup_form

NO_WRAP = "* { overflow-wrap: normal !important; word-break: normal !important; }"

SUBJECT = {"zh": "欢迎订阅《天堂之芯》", "en": "Welcome to 天堂之芯"}
CONFIRMED = {
    "zh": "您的订阅已确认。今后每期都会发给您全文版，主题：政策、数据。",
    "en": "Your subscription is confirmed. Each new issue will bring you the full edition for your topics: Policy, Data.",
}


def confirm(client: FlaskClient, path: str) -> int:
    """Press the confirmation page's button, as the reader does."""
    status: int = client.post(path, data={"csrf_token": csrf_token(client, path)}).status_code
    return status


def plain(message: EmailMessage) -> str:
    content: str = message.get_body(("plain",)).get_content()
    return content


def welcomes(db: Session) -> list[OutboxMessage]:
    db.expire_all()
    rows = list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "welcome")))
    db.rollback()
    return rows


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_confirming_sends_one_welcome_in_the_readers_language(
    app: Flask,
    client: FlaskClient,
    db: Session,
    smtp_sink: SmtpSink,
    celery_worker: object,
    lang: str,
) -> None:
    """Signup, confirm, confirm again: one welcome, in the reader's language, naming their
    topics in the configured order and carrying their preferences link in that language."""
    address = f"welcome-{lang}@example.com"
    client.post("/subscribe", data=signup_form(client, address, language=lang))
    [confirmation] = sent_to(smtp_sink, address)
    link = re.search(r"http://newsletter\.test(/confirm/\S+)", plain(confirmation))
    assert link
    token = csrf_token(client, link.group(1))
    assert client.post(link.group(1), data={"csrf_token": token}).status_code == 302
    # The button pressed again (back button, a second tab): the link is spent, no second welcome.
    assert client.post(link.group(1), data={"csrf_token": token}).status_code != 302
    messages = sent_to(smtp_sink, address, 2)
    welcome = messages[1]
    assert str(welcome["Subject"]) == SUBJECT[lang]
    text = plain(welcome)
    assert CONFIRMED[lang] in text
    assert re.search(r"http://newsletter\.test/preferences/\S+\?lang=" + lang, text)
    assert re.search(r"http://newsletter\.test/unsubscribe/\S+\?lang=" + lang, text)
    assert "/issues/" not in text  # nothing sent yet: no latest issue to show
    assert len(welcomes(db)) == 1
    assert len(smtp_sink.to(address)) == 2


def test_a_second_confirm_racing_the_first_queues_no_second_welcome(
    app: Flask, db: Session
) -> None:
    """Two clicks at once: both loaded the pending reader; the one that spends the link
    second (its conditional UPDATE finds the nonce already replaced) queues no welcome."""
    add_subscriber(db, "race@example.com", status="pending")
    consent = service.Consent(source="email-link", ip=None, user_agent=None, form_version="t")
    queued: list[int] = []
    other = Session(bind=db.get_bind())
    try:
        first = db.scalars(select(Subscriber)).one()
        second = other.scalars(select(Subscriber)).one()
        with app.app_context():
            service.confirm(db, first, consent, queued.append)
            db.commit()
            service.confirm(other, second, consent, queued.append)
            other.commit()
    finally:
        other.close()
    assert len(queued) == 1 and len(welcomes(db)) == 1


def test_the_setting_turns_the_welcome_off(app: Flask, client: FlaskClient, db: Session) -> None:
    """With NEWSLETTER_WELCOME_EMAIL false, confirming queues no welcome (on by default)."""
    assert app.config["WELCOME_EMAIL"] is True
    on = add_subscriber(db, "on@example.com", status="pending")
    assert confirm(client, path_of(app, "confirm", on)) == 302
    assert len(welcomes(db)) == 1
    app.config["WELCOME_EMAIL"] = False
    off = add_subscriber(db, "off@example.com", status="pending")
    assert confirm(client, path_of(app, "confirm", off)) == 302
    assert fresh(db, "off@example.com").status == "active"  # type: ignore[union-attr]
    assert len(welcomes(db)) == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_welcome_links_the_latest_sent_issue_in_the_readers_edition(
    app: Flask,
    client: FlaskClient,
    db: Session,
    smtp_sink: SmtpSink,
    celery_worker: object,
    lang: str,
) -> None:
    """Once a send has finished, the welcome names the latest issue by its subject in the
    reader's edition and links to its web copy in the reader's language."""
    issue = ready_seed(app, db)
    campaign = Campaign(
        issue_id=issue.id, status="done", created_by="editor@example.org",
        finished_at=utcnow() - timedelta(days=1),
    )  # fmt: skip
    db.add(campaign)
    db.flush()
    for topics, locale, subject in (
        (("companies",), "zh", "天堂之芯 · 第361期 · 企业"),
        (("data", "policy"), lang, f"天堂之芯 · 第361期 · {lang} · 政策、数据"),
        (("data", "policy"), "zh" if lang == "en" else "en", "another language"),
    ):
        db.add(
            CampaignSegment(
                campaign_id=campaign.id, issue_id=issue.id, topics=topics, format="full", locale=locale,
                subject=subject, html="<p>x</p>", text="x", nonce="n" * 16,
                greetings=["a", "b"], html_bytes=10,
                view_online_url=f"http://newsletter.test/issues/361?lang={locale}",
            )
        )  # fmt: skip
    db.commit()
    address = f"latest-{lang}@example.com"
    reader = add_subscriber(
        db, address, status="pending", locale=lang, topics=("policy", "data"), format="full"
    )
    assert confirm(client, path_of(app, "confirm", reader)) == 302
    [welcome] = sent_to(smtp_sink, address)
    text = plain(welcome)
    assert f"天堂之芯 · 第361期 · {lang} · 政策、数据" in text
    assert f"http://newsletter.test/issues/361?lang={lang}" in text
    html = welcome.get_body(("html",)).get_content()
    assert f'href="http://newsletter.test/issues/361?lang={lang}"' in html


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_notices_end_with_the_association_and_its_address_and_fit_a_phone(
    app: Flask, db: Session, page: Any, lang: str
) -> None:
    """The welcome and the confirmation end with the association's name and postal address
    (settings), in HTML and text, and fit 375 px even where overflow-wrap is ignored."""
    reader = add_subscriber(db, f"footer-{lang}@example.com", status="pending", locale=lang)
    consent = service.Consent(source="email-link", ip=None, user_agent=None, form_version="t")
    with app.app_context():
        service.confirm(db, reader, consent, lambda message_id: None)
        outbox.queue(
            db, "confirm", reader.email, lang, lambda message_id: None, subscriber_id=reader.id
        )
        db.commit()
        config = {
            **app.config,
            "ORGANISATION_NAME": "浙江省半导体行业协会",
            "POSTAL_ADDRESS": "浙江省杭州市西湖区文三路 90 号\n" + "Building" * 12,
        }
        rows = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        built = [outbox.build(db, row, config) for row in rows]
    assert [row.kind for row in rows] == ["welcome", "confirm"]
    page.set_viewport_size({"width": 375, "height": 800})
    for message in built:
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert "浙江省半导体行业协会 · 浙江省杭州市西湖区文三路 90 号 · " + "Building" * 12 in text
        page.set_content(html)
        page.add_style_tag(content=NO_WRAP)
        shown = page.evaluate("() => document.body.innerText").replace("\u200b", "")
        assert "浙江省半导体行业协会 · 浙江省杭州市西湖区文三路 90 号 · " + "Building" * 12 in shown
        assert horizontal_overflow(page) == 0
