"""The whole reader's path in headless Chromium, in Chinese, on a phone-sized screen."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.conftest import LiveServer
from tests.conftest import SmtpSink
from tests.conftest import horizontal_overflow
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import link_in
from tests.test_subscribe import path_of
from tests.test_subscribe import sent_to


@pytest.mark.browser
def test_subscribe_confirm_change_topics_and_leave_in_chinese(
    live_server: LiveServer, page: Any, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """Subscribe → confirmation email through the worker → confirm → change topics → unsubscribe."""
    page.goto(live_server.url + "/subscribe")
    assert page.locator("h1").inner_text() == "订阅本刊"
    assert horizontal_overflow(page) == 0
    page.get_by_label("邮箱地址").fill("duzhe@example.com")
    page.get_by_label("姓名（选填）").fill("杜者")
    page.get_by_role("button", name="订阅", exact=True).click()
    assert page.locator("h1").inner_text() == "请查收邮件"

    [message] = sent_to(smtp_sink, "duzhe@example.com")
    assert "请确认您的订阅" in str(message["Subject"])
    page.goto(live_server.url + link_in(message, "confirm"))
    assert horizontal_overflow(page) == 0
    page.get_by_role("button", name="确认订阅").click()
    assert page.locator("h1").inner_text() == "订阅设置"
    assert "您的订阅已确认" in page.locator(".flash").first.inner_text()

    page.get_by_label("数据").uncheck()
    page.get_by_label("摘要版", exact=True).check()
    page.get_by_role("button", name="保存我的选择").click()
    [changes] = page.locator(".flash").all_inner_texts()
    assert changes == "已保存。主题：政策、企业、数据 → 政策、企业；格式：全文版 → 摘要版。"
    subscriber = fresh(db, "duzhe@example.com")
    assert subscriber is not None
    assert (subscriber.status, subscriber.topics, subscriber.format) == (
        "active",
        ("companies", "policy"),
        "digest",
    )
    assert horizontal_overflow(page) == 0

    page.get_by_role("link", name="退订").click()
    page.get_by_role("button", name="退订").click()
    assert page.locator("h1").inner_text() == "您已退订"
    assert page.get_by_role("button", name="重新订阅").is_visible()
    assert fresh(db, "duzhe@example.com").status == "unsubscribed"  # type: ignore[union-attr]


@pytest.mark.browser
def test_one_click_unsubscribe_on_its_own(live_server: LiveServer, page: Any, db: Session) -> None:
    """The RFC 8058 POST, sent by a mail provider with no page, cookie or token, unsubscribes."""
    subscriber = add_subscriber(db, "oneclick@example.com")
    url = live_server.url + path_of(live_server.app, "unsubscribe", subscriber)
    response = page.request.post(url, form={"List-Unsubscribe": "One-Click"})
    assert response.status == 200
    assert fresh(db, "oneclick@example.com").status == "unsubscribed"  # type: ignore[union-attr]
