"""The progress page in a real browser: it updates itself, and Pause and Continue answer in place."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import tasks
from campaigns.forms import PAUSED_BY
from campaigns.models import Campaign
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import make_editor
from tests.test_campaign_pages import add_audience
from tests.test_campaign_pages import ready_issue
from tests.test_campaign_pages import running_campaign


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Batches the page would set going, recorded: with no worker, nothing may reach Redis."""
    calls: dict[str, list[int]] = {"start": [], "batches": []}
    monkeypatch.setattr(tasks, "enqueue_start", calls["start"].append)
    monkeypatch.setattr(tasks, "enqueue_batches", calls["batches"].append)
    return calls


CHIEF = "chief@newsletter.test"


def _log_in(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "editor@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")


def _status(db: Session, campaign_id: int) -> str:
    db.expire_all()
    campaign = db.get(Campaign, campaign_id)
    db.rollback()
    assert campaign is not None
    return campaign.status


@pytest.mark.browser
def test_pause_and_continue_without_reloading(
    app: Flask,
    live_server: LiveServer,
    page: Any,
    db: Session,
    enqueued: dict[str, list[int]],
) -> None:
    """A running send (no worker, so nothing goes out): 暂停 shows 已暂停, 继续 shows 发送中,
    both on the same page load, and the numbers the page polls for stay in place."""
    issue = ready_issue(app, db)
    add_audience(db, (20, 10, 5))
    campaign_id = running_campaign(app, db, issue)
    make_editor(db)
    problems: list[str] = []
    # Script errors and Content Security Policy refusals (the missing favicon is no problem).
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Security Policy" in message.text else None
        ),
    )
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/editor/campaigns/{campaign_id}")
    status = page.locator("[data-field=status_label]")
    assert status.inner_text() == "发送中"
    assert page.locator("[data-field=total]").inner_text() == "35"
    assert horizontal_overflow(page) == 0
    # A mark on this page load: a reload would wipe it.
    page.evaluate("window.sameLoad = true")
    page.get_by_role("button", name="暂停").click()
    expect(status).to_have_text("已暂停")
    assert page.get_by_role("button", name="继续").is_visible()
    assert not page.get_by_role("button", name="暂停").is_visible()
    assert "暂停了发送" in page.locator("[data-field=paused_reason]").inner_text()
    assert _status(db, campaign_id) == "paused"
    page.get_by_role("button", name="继续").click()
    expect(status).to_have_text("发送中")
    assert page.get_by_role("button", name="暂停").is_visible()
    assert not page.locator("[data-field=paused_reason]").is_visible()
    assert _status(db, campaign_id) == "running" and enqueued["batches"] == [campaign_id]
    assert page.evaluate("window.sameLoad") is True
    assert problems == []


@pytest.mark.browser
def test_the_page_follows_a_change_made_elsewhere(
    app: Flask,
    live_server: LiveServer,
    page: Any,
    db: Session,
    enqueued: dict[str, list[int]],
) -> None:
    """Paused from another window (here: the database), the open page shows it within seconds."""
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    make_editor(db)
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/editor/campaigns/{campaign_id}")
    page.evaluate("window.sameLoad = true")
    status = page.locator("[data-field=status_label]")
    db.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(status="paused", paused_reason={"msgid": PAUSED_BY, "params": {"email": CHIEF}})
    )
    db.commit()
    expect(status).to_have_text("已暂停", timeout=10_000)
    assert page.locator("[data-field=paused_reason]").inner_text() == f"{CHIEF} 暂停了发送。"
    assert page.evaluate("window.sameLoad") is True


@pytest.mark.browser
def test_the_time_fields_belong_to_schedule(
    app: Flask, live_server: LiveServer, page: Any, db: Session
) -> None:
    """On a phone the send page fits; the time fields show once 定时发送 is chosen."""
    issue = ready_issue(app, db)
    add_audience(db)
    make_editor(db)
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/editor/campaigns/new/{issue.id}")
    assert horizontal_overflow(page) == 0
    start = page.get_by_label("开始时间")
    expect(start).to_be_hidden()
    page.get_by_label("定时发送").check()
    expect(start).to_be_visible()
    expect(page.get_by_label("发送给 6 位订阅者")).not_to_be_checked()
