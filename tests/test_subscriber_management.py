"""Editors managing subscribers: readable history, list columns and sorting, editing, bulk actions."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import agents
from core import sessions
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import csrf_token
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
    _event(
        db,
        subscriber,
        datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        action="unsubscribe",
        source="mailto",
        changes={"status": ["active", "unsubscribed"]},
    )
    _event(
        db,
        subscriber,
        datetime(2026, 12, 2, 4, 0, tzinfo=UTC),
        action="suppress",
        source="bounce",
        note="dsn hard_bounce: 550 5.1.1",
        changes={"reason": "hard_bounce"},
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
    assert "2026年12月2日 11:00 通过发信到退订地址退订" in page
    assert "2026年12月2日 12:00 因退信屏蔽此地址，原因：邮箱地址不存在 详情 dsn hard_bounce" in page
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


def _rows(page: str) -> list[str]:
    """The addresses of the list's rows, in order."""
    return re.findall(r'<td><a href="/editor/subscribers/\d+">([^<]+)</a></td>', page)


def test_list_sorts_by_column_and_shows_date_and_language(client: FlaskClient, db: Session) -> None:
    """Column headings sort either way; the list shows when each subscribed and their language."""
    _admin(client, db)
    for n, (email, locale) in enumerate(
        (("b@example.com", "en"), ("c@example.com", "zh"), ("a@example.com", "zh"))
    ):
        row = add_subscriber(db, email, locale=locale)
        row.created_at = datetime(2026, 11, 1 + n, 16, 30, tzinfo=UTC)
    db.commit()
    newest_first = client.get(LIST + "?lang=zh").get_data(as_text=True)
    assert _rows(newest_first) == ["a@example.com", "c@example.com", "b@example.com"]
    assert "2026年11月2日 00:30" in newest_first  # 16:30 UTC on 1 November, in Beijing
    assert "<th" in newest_first and ">订阅时间" in newest_first and ">语言" in newest_first
    by_email = client.get(LIST + "?sort=email").get_data(as_text=True)
    assert _rows(by_email) == ["a@example.com", "b@example.com", "c@example.com"]
    assert 'href="/editor/subscribers/?sort=-email"' in by_email  # the heading now reverses
    assert _rows(client.get(LIST + "?sort=-email").get_data(as_text=True)) == [
        "c@example.com",
        "b@example.com",
        "a@example.com",
    ]
    english = client.get(LIST + "?sort=language&language=en&lang=en").get_data(as_text=True)
    assert _rows(english) == ["b@example.com"] and "2 November 2026, 00:30" in english
    assert "16:30" not in english and "UTC" not in english
    assert _rows(client.get(LIST + "?sort=nonsense").get_data(as_text=True)) == [
        "a@example.com",
        "c@example.com",
        "b@example.com",
    ]


def test_blocked_is_a_filter_of_its_own(client: FlaskClient, db: Session) -> None:
    """ "Blocked" lists blocked addresses only; "unsubscribed" lists those who may come back."""
    _admin(client, db)
    add_subscriber(db, "left@example.com", status="unsubscribed")
    blocked = add_subscriber(db, "blocked@example.com")
    add_subscriber(db, "bounced@example.com", status="bounced")
    add_subscriber(db, "reader@example.com")
    with client.application.test_request_context():
        from subscribers import service

        service.suppress(db, blocked.email, "manual", service.Consent(source="editor"))
    db.commit()
    page = client.get(LIST + "?status=blocked").get_data(as_text=True)
    assert sorted(_rows(page)) == ["blocked@example.com", "bounced@example.com"]
    assert "已屏蔽" in page
    assert _rows(client.get(LIST + "?status=unsubscribed").get_data(as_text=True)) == [
        "left@example.com"
    ]
    assert _rows(client.get(LIST + "?status=active").get_data(as_text=True)) == [
        "reader@example.com"
    ]


def test_an_editor_edits_a_subscriber_and_the_history_says_who(
    client: FlaskClient, db: Session
) -> None:
    """Name, topics, format and language are editable; the consent record names the editor."""
    _admin(client, db)
    subscriber = add_subscriber(db, "wang@example.com", topics=("policy",), locale="zh")
    page = f"{LIST}{subscriber.id}"
    form = {
        "csrf_token": csrf_token(client, page),
        "name": "王芳",
        "topics": ["policy", "data"],
        "format": "digest",
        "language": "en",
    }
    response = client.post(f"{page}/edit", data=form)
    assert response.status_code == 302
    after = text_of(client.get(page + "?lang=zh").get_data(as_text=True))
    assert "已保存" in after
    assert (
        "由 admin@newsletter.test 修改资料，姓名：— → 王芳，主题：政策 → 政策、数据，"
        "格式：全文版 → 摘要版，语言：中文 → English"
    ) in after
    db.expire_all()
    row = db.get(Subscriber, subscriber.id)
    assert row is not None
    assert (row.name, row.topics, row.format, row.locale) == (
        "王芳",
        ("data", "policy"),
        "digest",
        "en",
    )
    event = db.scalars(select(ConsentEvent).where(ConsentEvent.action == "edit")).one()
    assert (event.source, event.actor) == ("editor", "admin@newsletter.test")
    # No topic, an unknown language, no token: refused, nothing written.
    refused = {**form, "topics": [], "language": "fr", "csrf_token": csrf_token(client, page)}
    client.post(f"{page}/edit", data=refused)
    assert "请至少选择一个主题。" in client.get(page).get_data(as_text=True)
    client.post(f"{page}/edit", data={**form, "csrf_token": "", "name": "李四"})
    assert db.scalars(select(ConsentEvent).where(ConsentEvent.action == "edit")).all() == [event]
    db.expire_all()
    assert db.get(Subscriber, subscriber.id).name == "王芳"  # type: ignore[union-attr]


def _bulk(client: FlaskClient, action: str, ids: list[object], token: str | None = None) -> Any:
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client, LIST) if token is None else token,
        "action": action,
        "selected": [str(i) for i in ids],
        "next": LIST + "?status=active",
    }
    if action == "block":
        data["sure"] = "y"
    return client.post(LIST + "bulk", data=data)


def test_bulk_unsubscribe_and_block_are_all_or_nothing(client: FlaskClient, db: Session) -> None:
    """A selection is unsubscribed or blocked in one go, each with a record naming the editor;
    a selection with a row that is gone, or without the page's token, changes nothing."""
    _admin(client, db)
    first, second, third = (add_subscriber(db, f"r{n}@example.com") for n in range(3))
    ids = [first.id, second.id]
    gone = _bulk(client, "unsubscribe", [*ids, 2_000_000])  # one row no longer exists
    message = client.get(gone.headers["Location"] + "&lang=zh").get_data(as_text=True)
    assert "所选订阅者中有的已不存在，未做任何修改。" in message
    for refused in (
        _bulk(client, "unsubscribe", ids, token="not-the-token"),
        _bulk(client, "unsubscribe", [*ids, "1 OR 1=1"]),
        _bulk(client, "delete", ids),
    ):
        assert refused.status_code in (302, 400)
    db.expire_all()
    assert {row.status for row in db.scalars(select(Subscriber))} == {"active"}
    assert db.scalars(select(ConsentEvent)).all() == []

    done = _bulk(client, "unsubscribe", ids)
    assert done.status_code == 302 and done.headers["Location"].endswith("?status=active")
    assert "已退订 2 位订阅者。" in client.get(LIST).get_data(as_text=True)
    db.expire_all()
    assert [row.status for row in (first, second, third)] == [
        "unsubscribed",
        "unsubscribed",
        "active",
    ]
    events = db.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert [(e.subscriber_id, e.action, e.source, e.actor) for e in events] == [
        (first.id, "unsubscribe", "editor", "admin@newsletter.test"),
        (second.id, "unsubscribe", "editor", "admin@newsletter.test"),
    ]

    unsure = client.post(
        LIST + "bulk",
        data={"csrf_token": csrf_token(client, LIST), "action": "block", "selected": [third.id]},
    )
    assert "请勾选“今后不能再订阅”后再屏蔽所选地址。" in client.get(
        unsure.headers["Location"]
    ).get_data(as_text=True)
    db.expire_all()
    assert third.status == "active"
    _bulk(client, "block", [second.id, third.id])
    page = client.get(LIST + "?status=blocked&lang=zh").get_data(as_text=True)
    assert "已屏蔽 2 个地址。" in page
    assert sorted(_rows(page)) == ["r1@example.com", "r2@example.com"]
    _bulk(client, "block", [second.id])
    assert "另有 1 位无需更改。" in client.get(LIST).get_data(as_text=True)


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("zh", "已屏蔽 1 个地址。另有 1 位无需更改。"),
        ("en", "1 address blocked. 1 needed no change."),
    ],
)
def test_a_bulk_message_of_two_sentences_reads_as_the_language_writes(
    client: FlaskClient, db: Session, lang: str, message: str
) -> None:
    """Blocking one new and one blocked address: Chinese sentences run on, English take a space."""
    _admin(client, db)
    first = add_subscriber(db, "b1@example.com")
    second = add_subscriber(db, "b2@example.com")
    _bulk(client, "block", [first.id])
    client.get(LIST)
    client.get(LIST + f"?lang={lang}")
    _bulk(client, "block", [first.id, second.id])
    assert message in text_of(client.get(LIST).get_data(as_text=True))


def test_bulk_export_of_a_selection(client: FlaskClient, db: Session) -> None:
    """Export writes the selected subscribers only, as CSV, and changes nothing."""
    _admin(client, db)
    chosen = add_subscriber(db, "chosen@example.com", name="王芳")
    add_subscriber(db, "other@example.com")
    response = _bulk(client, "export", [chosen.id])
    assert response.status_code == 200 and response.mimetype == "text/csv"
    body = response.get_data(as_text=True)
    assert "chosen@example.com" in body and "王芳" in body and "other@example.com" not in body
    assert db.scalars(select(ConsentEvent)).all() == []


def test_export_files_are_named_by_the_editors_date(
    client: FlaskClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 20:30 UTC on 3 December it is 04:30 on 4 December in Beijing: the names say so."""
    _admin(client, db)
    chosen = add_subscriber(db, "chosen@example.com")
    evening = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
    monkeypatch.setattr("subscribers.admin.utcnow", lambda: evening)
    whole = client.get(LIST + "export.csv")
    assert whole.headers["Content-Disposition"] == (
        'attachment; filename="subscribers-20261204-0430.csv"'
    )
    selected = _bulk(client, "export", [chosen.id])
    assert selected.headers["Content-Disposition"] == (
        'attachment; filename="subscribers-selected-20261204-0430.csv"'
    )


def test_bulk_actions_in_the_browser(live_server: LiveServer, page: Any, db: Session) -> None:
    """At 375 px, in Chinese and English, an editor ticks rows and blocks them from the list."""
    make_editor(db, "admin@newsletter.test", role="admin")
    for n in range(3):
        add_subscriber(db, f"p{n}@example.com")
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "admin@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")
    page.goto(live_server.url + LIST + "?lang=en")
    assert horizontal_overflow(page) == 0
    page.get_by_label("Select p1@example.com").check()
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert "1 subscriber unsubscribed." in page.locator("body").inner_text()
    page.goto(live_server.url + LIST + "?lang=zh")
    assert horizontal_overflow(page) == 0
    page.get_by_label("选择 p0@example.com").check()
    page.get_by_label("选择 p2@example.com").check()
    page.get_by_label("今后不能再订阅（屏蔽时须勾选）").check()
    page.get_by_role("button", name="屏蔽（今后不能再订阅）").click()
    page.wait_for_load_state()
    assert "已屏蔽 2 个地址。" in page.locator("body").inner_text()
    page.goto(live_server.url + LIST + "?status=blocked")
    assert sorted(page.locator("table.subscribers tbody td a").all_inner_texts()) == [
        "p0@example.com",
        "p2@example.com",
    ]


def test_every_column_sorts_both_ways_with_empty_values_last(
    client: FlaskClient, db: Session
) -> None:
    """Each sortable heading gives a full, stable page either way; a missing name sorts last."""
    _admin(client, db)
    add_subscriber(db, "named@example.com", name="王芳", member=True, locale="en", format="digest")
    add_subscriber(db, "nameless@example.com")
    add_subscriber(db, "left@example.com", name="李雷", status="unsubscribed")
    for name in ("email", "name", "status", "format", "language", "member", "created"):
        for sort in (name, f"-{name}"):
            response = client.get(f"{LIST}?sort={sort}")
            assert response.status_code == 200, sort
            assert len(_rows(response.get_data(as_text=True))) == 3, sort
    for sort in ("name", "-name"):
        assert _rows(client.get(f"{LIST}?sort={sort}").get_data(as_text=True))[-1] == (
            "nameless@example.com"
        ), sort


def test_browsers_are_named_alike_for_sessions_and_history() -> None:
    """An editor's sessions and a subscriber's history shorten a user agent the same way."""
    wechat = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI"
    )
    edge = CHROME + " Edg/120.0.2210.61"
    for agent, name in (
        (CHROME, "Chrome 120 · Windows"),
        (IPHONE, "Mobile Safari 17 · iOS"),
        (wechat, "WeChat Browser 8 · iOS"),
        (edge, "Edge 120 · Windows"),
    ):
        assert agents.short(agent) == name
        assert sessions.describe_browser(agent) == name
    assert agents.short("") == "" and sessions.describe_browser("x" * 80) == "x" * 60


def test_sort_and_edit_in_the_browser(live_server: LiveServer, page: Any, db: Session) -> None:
    """At 375 px an editor sorts the list by a heading (English) and edits a subscriber (Chinese)."""
    make_editor(db, "admin@newsletter.test", role="admin")
    for email in ("b@example.com", "a@example.com", "c@example.com"):
        add_subscriber(db, email, topics=("policy",))
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "admin@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")
    page.goto(live_server.url + LIST + "?lang=en")
    page.get_by_role("link", name="Email", exact=True).click()
    page.wait_for_url("**sort=email**")
    rows = page.locator("table.subscribers tbody td a").all_inner_texts()
    assert rows == ["a@example.com", "b@example.com", "c@example.com"]
    page.get_by_role("link", name="Email ↑").click()
    page.wait_for_url("**sort=-email**")
    assert page.locator("table.subscribers tbody td a").first.inner_text() == "c@example.com"
    page.get_by_role("link", name="a@example.com").click()
    page.goto(page.url + "?lang=zh")
    page.fill("input[name=name]", "王芳")
    page.get_by_role("checkbox", name="数据", exact=True).check()
    page.get_by_role("radio", name="摘要版", exact=True).check()
    page.locator("form[action$='/edit'] button[type=submit]").click()
    page.wait_for_load_state()
    history = page.locator("ol.history").inner_text()
    assert (
        "由 admin@newsletter.test 修改资料，姓名：— → 王芳，主题：政策 → 政策、数据，"
        "格式：全文版 → 摘要版"
    ) in history
    assert "已保存" in page.locator("body").inner_text()
    assert horizontal_overflow(page) == 0
