"""Editors managing subscribers: readable history, list columns and sorting, editing, bulk actions."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_subscribe import add_subscriber

LIST = "/editor/subscribers/"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def _admin(client: FlaskClient, db: Session) -> None:
    make_editor(db, "admin@newsletter.test", role="admin")
    log_in(client, "admin@newsletter.test")


def text_of(html: str) -> str:
    """What a reader of the page sees: the text without tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _event(db: Session, subscriber: Subscriber, at: datetime, **values: Any) -> None:
    db.add(ConsentEvent(subscriber_id=subscriber.id, created_at=at, **values))
    db.commit()


def _with_history(db: Session) -> Subscriber:
    subscriber = add_subscriber(db, "wang@example.com", topics=("data", "policy"))
    subscriber.created_at = datetime(2026, 12, 1, 7, 52, tzinfo=UTC)
    db.commit()
    _event(
        db,
        subscriber,
        datetime(2026, 12, 1, 7, 52, tzinfo=UTC),
        action="subscribe",
        source="web",
        ip="203.0.113.9",
        user_agent=CHROME,
        changes={"status": [None, "pending"], "topics": [[], ["data", "policy"]]},
    )
    _event(
        db,
        subscriber,
        datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        action="confirm",
        source="email-link",
        user_agent=IPHONE,
        changes={"status": ["pending", "active"], "confirmed_at": [None, "2026-12-01T08:00:00"]},
    )
    _event(
        db,
        subscriber,
        datetime(2026, 12, 2, 1, 5, tzinfo=UTC),
        action="preferences",
        source="web",
        changes={"format": ["full", "digest"], "locale": ["zh", "en"]},
    )
    _event(
        db,
        subscriber,
        datetime(2026, 12, 2, 2, 0, tzinfo=UTC),
        action="suppress",
        source="editor",
        actor="admin@newsletter.test",
        changes={"status": ["active", "unsubscribed"], "reason": "manual"},
    )
    return subscriber


def test_history_reads_as_sentences_in_beijing_time(client: FlaskClient, db: Session) -> None:
    """The consent history is sentences with Beijing times, translated labels, short browsers."""
    _admin(client, db)
    subscriber = _with_history(db)
    page = text_of(client.get(f"{LIST}{subscriber.id}?lang=zh").get_data(as_text=True))
    assert "2026年12月1日 15:52 通过网页订阅，主题：政策、数据" in page
    assert "203.0.113.9 · Chrome 120 · Windows" in page
    assert "2026年12月1日 16:00 通过邮件中的链接确认订阅 Mobile Safari 17 · iOS" in page
    assert "Mobile Safari 17 · iOS" in page and "Mozilla/5.0" not in page
    assert "通过网页修改订阅设置，格式：全文版 → 摘要版，语言：中文 → English" in page
    assert "由 admin@newsletter.test 屏蔽此地址，原因：编辑屏蔽" in page
    assert "注册时间" in page or "订阅时间" in page
    assert "2026年12月1日 15:52（北京时间）" in page
    for technical in ("UTC", "2026-12-01", "['", "confirmed_at", "email-link", "None"):
        assert technical not in page, technical
    english = text_of(client.get(f"{LIST}{subscriber.id}?lang=en").get_data(as_text=True))
    assert "1 December 2026, 15:52 signed up on the website; topics: Policy, Data" in english
    assert (
        "changed the preferences on the website; format: Full issue → Digest; language: 中文 → English"
        in english
    )
    assert "1 December 2026, 15:52 (Beijing time)" in english


def test_history_page_on_a_phone(live_server: LiveServer, page: Any, db: Session) -> None:
    """At 375 px the subscriber's page shows its history in Chinese and English, nothing wider."""
    make_editor(db, "admin@newsletter.test", role="admin")
    subscriber = _with_history(db)
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "admin@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")
    for lang, words in (
        ("zh", "通过网页订阅，主题：政策、数据"),
        ("en", "signed up on the website"),
    ):
        page.goto(f"{live_server.url}{LIST}{subscriber.id}?lang={lang}")
        history = page.locator("ol.history").inner_text()
        assert words in history
        assert horizontal_overflow(page) == 0, lang
