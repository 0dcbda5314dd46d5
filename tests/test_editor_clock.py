"""The editors' clock (core.clock): every time shown and typed in the console is in TIMEZONE."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.sessions import EditorSession
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import csrf_token
from tests.helpers import make_editor
from tests.test_campaign_pages import INDEX
from tests.test_campaign_pages import add_audience
from tests.test_campaign_pages import campaigns
from tests.test_campaign_pages import editor  # noqa: F401  (a fixture)
from tests.test_campaign_pages import enqueued  # noqa: F401  (a fixture)
from tests.test_campaign_pages import ready_issue
from tests.test_campaign_pages import send_form
from tests.test_devmail import viewer  # noqa: F401  (the fixture)

# 07:52 UTC is 15:52 in Beijing, on the next calendar day for a late UTC time.
MOMENT = datetime(2026, 12, 1, 7, 52, tzinfo=UTC)
LATE = datetime(2026, 12, 1, 20, 5, tzinfo=UTC)


def test_times_are_shown_in_beijing_time_in_both_languages(app: Flask) -> None:
    """A stored UTC time reads as Beijing time, labelled so, in Chinese and in English."""
    with app.test_request_context("/?lang=zh"):
        assert clock.when(MOMENT) == "2026年12月1日 15:52（北京时间）"
        assert clock.clock(LATE) == "2026年12月2日 04:05"
        assert clock.zone_label() == "北京时间"
        assert clock.field_time(MOMENT) == "2026-12-01T15:52"
        assert clock.when(None) == "" and clock.clock(None) == ""
    with app.test_request_context("/?lang=en"):
        assert clock.when(MOMENT) == "1 December 2026, 15:52 (Beijing time)"
        assert clock.clock(LATE) == "2 December 2026, 04:05"


def test_templates_get_one_clock(app: Flask) -> None:
    """Any template can call clock() / when() or use them as filters, with no view passing them."""
    with app.test_request_context("/?lang=zh"):
        rendered = app.jinja_env.from_string(
            "{{ when(t) }}|{{ t|clock }}|{{ zone_label() }}|{{ field_time(t) }}"
        ).render(t=MOMENT)
    assert (
        rendered == "2026年12月1日 15:52（北京时间）|2026年12月1日 15:52|北京时间|2026-12-01T15:52"
    )


def test_typed_times_are_read_in_the_editors_zone(app: Flask) -> None:
    """What an editor types is Beijing time, stored as UTC; impossible times are refused."""
    with app.test_request_context("/"):
        assert clock.parse_local("2026-12-01T15:30") == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
        assert clock.parse_local(" 2026-12-01 15:30:00 ") == datetime(
            2026, 12, 1, 7, 30, tzinfo=UTC
        )
        for wrong in ("", "tomorrow", "2026-13-01T10:00", "0001-01-01T01:00"):
            with pytest.raises(ValueError):
                clock.parse_local(wrong)
    # 02:30 on the night New York moves its clocks forward does not exist there.
    with pytest.raises(ValueError):
        clock.parse_local("2026-03-08T02:30", ZoneInfo("America/New_York"))
    assert clock.parse_local("2026-03-08T03:30", ZoneInfo("America/New_York")) == datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC
    )


def test_captured_mail_lists_its_times_in_beijing_time(viewer: FlaskClient) -> None:  # noqa: F811
    """The development inbox shows each email's Date header as Beijing time, not the raw header."""
    folder = Path(viewer.application.config["CAPTURE_DIR"])
    raw = message_from_bytes(next(folder.glob("2026*.eml")).read_bytes())["Date"]
    moment = parsedate_to_datetime(raw)
    page = viewer.get("/dev/mail/?lang=zh").get_data(as_text=True)
    assert raw not in page and "时间均为北京时间。" in page
    with viewer.application.test_request_context("/?lang=zh"):
        assert clock.clock(moment) in page
    with viewer.application.test_request_context("/?lang=zh"):
        assert clock.header_time("not a date") == "not a date"
        assert clock.header_time(None) == ""


def test_account_page_times_in_the_browser(live_server: LiveServer, page: Any, db: Session) -> None:
    """At 375 px the account page gives its session times in Beijing time, saying so, in both languages."""
    make_editor(db, "admin@newsletter.test", role="admin")
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "admin@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")
    db.expire_all()
    started = db.scalars(select(EditorSession)).one().created_at
    for lang, label in (("zh", "时间均为北京时间。"), ("en", "Times are Beijing time.")):
        for path in ("/editor/account", "/editor/accounts"):
            page.goto(f"{live_server.url}{path}?lang={lang}")
            text = page.locator("main").inner_text()
            assert label in text and "UTC" not in text, (lang, path)
            assert horizontal_overflow(page) == 0, (lang, path)
        with live_server.app.test_request_context(f"/?lang={lang}"):
            shown = clock.clock(started)
        page.goto(f"{live_server.url}/editor/account?lang={lang}")
        assert shown in page.locator("#sessions").inner_text()


@pytest.mark.parametrize(
    "typed",
    ["0001-01-01T00:30", "0001-01-01 07:59"],  # before 1 January of year 1 in UTC
)
def test_a_schedule_at_the_ends_of_the_calendar_is_refused_plainly(
    app: Flask,
    editor: FlaskClient,  # noqa: F811
    db: Session,
    enqueued: dict[str, list[int]],  # noqa: F811
    typed: str,
) -> None:
    """A start time with no UTC counterpart gets the plain time-format message, not a crash."""
    issue = ready_issue(app, db)
    add_audience(db)
    page = f"{INDEX}new/{issue.id}"
    data = send_form(when="later", send_at=typed, csrf_token=csrf_token(editor, page))
    response = editor.post(page + "?lang=zh", data=data)
    assert response.status_code == 400
    assert "时间格式不对" in response.get_data(as_text=True)
    assert campaigns(db) == [] and enqueued["start"] == []
