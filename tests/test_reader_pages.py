"""The reader's pages as a reader meets them, in headless Chromium at 375 px, in Chinese and
English: what the format and language choices mean, a confirmation link clicked twice, one
"saved" message, the unsubscribe page's offers, the 429 page's wait, one confirmation for a
form sent twice, and no page wider than a phone."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import OutboxMessage
from subscribers.models import SignupRequest
from subscribers.models import Suppression
from tests.conftest import LiveServer
from tests.conftest import SmtpSink
from tests.conftest import horizontal_overflow
from tests.conftest import wait_until
from tests.test_archive import store
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import path_of
from tests.test_subscribe import signup_form

LANGS = ["zh", "en"]
WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "full_hint": "最长的几篇只列摘要，点击标题到网站阅读全文",
        "language_note": "文章保持原文的语言",
        "confirm": "确认订阅",
        "confirmed": "您的订阅已确认",
        "preferences": "订阅设置",
        "save": "保存我的选择",
        "data": "数据",
        "organisation": "单位（选填）",
        "saved": "已保存。主题：政策、企业、数据 → 政策、企业；单位：旧单位 → 新单位。",
        "fewer": "少选几个主题",
        "digest_instead": "改收摘要版",
        "digest_saved": "已保存。格式：全文版 → 摘要版。",
        "subscribe": "订阅",
        "wait_hour": "请 60 分钟后再试。",
    },
    "en": {
        "full_hint": "the longest articles come as summaries with a link to read them in full",
        "language_note": "The articles stay in the language they were written in.",
        "confirm": "Confirm my subscription",
        "confirmed": "Your subscription is confirmed",
        "preferences": "Your preferences",
        "save": "Save my choices",
        "data": "Data",
        "organisation": "Organisation (optional)",
        "saved": (
            "Saved. Topics: Policy, Companies, Data → Policy, Companies;"
            " Organisation: 旧单位 → 新单位."
        ),
        "fewer": "Choose fewer topics",
        "digest_instead": "Receive the digest instead",
        "digest_saved": "Saved. Format: Full issue → Digest.",
        "subscribe": "Subscribe",
        "wait_hour": "Wait 60 minutes, then try again.",
    },
}


def open_in(page: Any, live_server: LiveServer, lang: str, path: str) -> Any:
    """Open ``path`` in the reader's language: a reader's own link may carry it already,
    otherwise ``?lang=`` (the cookie keeps it)."""
    if "lang=" in path:
        return page.goto(live_server.url + path)
    separator = "&" if "?" in path else "?"
    return page.goto(f"{live_server.url}{path}{separator}lang={lang}")


def fits(page: Any) -> None:
    assert horizontal_overflow(page) == 0, page.url


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_format_and_language_choices_say_what_they_change(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """The subscribe and preferences pages promise no "every article in full" and say that the
    language choice changes the email's own words, not the articles."""
    words = WORDS[lang]
    subscriber = add_subscriber(db, "reader@example.com", locale=lang)
    for path in ("/subscribe", path_of(live_server.app, "preferences", subscriber)):
        open_in(page, live_server, lang, path)
        text = page.locator("main").inner_text()
        assert "全部文章全文" not in text and "in full." not in text, path
        assert page.get_by_text(words["full_hint"]).is_visible(), path
        assert page.get_by_text(words["language_note"]).is_visible(), path
        fits(page)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_confirmation_link_clicked_twice_says_it_is_confirmed(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """The second visit to a used confirmation link is a 200 page headed 您的订阅已确认."""
    words = WORDS[lang]
    subscriber = add_subscriber(db, "twice@example.com", locale=lang, status="pending")
    path = path_of(live_server.app, "confirm", subscriber)
    open_in(page, live_server, lang, path)
    page.get_by_role("button", name=words["confirm"]).click()
    assert page.locator("h1").inner_text() == words["preferences"]
    again = page.goto(live_server.url + path)
    assert again.status == 200
    assert page.locator("h1").inner_text() == words["confirmed"]
    assert fresh(db, "twice@example.com").status == "active"  # type: ignore[union-attr]
    fits(page)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_saving_preferences_shows_one_message_and_keeps_the_organisation(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """One "saved" message lists every change; the organisation asked at signup is editable."""
    words = WORDS[lang]
    subscriber = add_subscriber(db, "org@example.com", locale=lang, organisation="旧单位")
    open_in(page, live_server, lang, path_of(live_server.app, "preferences", subscriber))
    organisation = page.get_by_label(words["organisation"])
    assert organisation.input_value() == "旧单位"
    page.get_by_label(words["data"], exact=True).uncheck()
    organisation.fill("新单位")
    page.get_by_role("button", name=words["save"]).click()
    assert page.locator(".flash").all_inner_texts() == [words["saved"]]
    after = fresh(db, "org@example.com")
    assert after is not None and (after.organisation, after.topics) == (
        "新单位",
        ("companies", "policy"),
    )
    fits(page)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_choosing_another_language_turns_the_pages_to_it(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """A reader who changes language on the preferences page gets the saved message and the
    following pages in the new language, not in the one the page was opened in."""
    other = "en" if lang == "zh" else "zh"
    subscriber = add_subscriber(db, "switch@example.com", locale=lang)
    open_in(page, live_server, lang, path_of(live_server.app, "preferences", subscriber))
    page.locator(f"input[name=language][value={other}]").check()
    page.get_by_role("button", name=WORDS[lang]["save"]).click()
    assert page.locator("h1").inner_text() == WORDS[other]["preferences"]
    saved = {"zh": "已保存。语言：", "en": "Saved. Language: "}[other]
    assert page.locator(".flash").inner_text().startswith(saved)
    page.goto(live_server.url + "/subscribe")
    assert page.get_by_role("button", name=WORDS[other]["subscribe"], exact=True).is_visible()
    assert fresh(db, "switch@example.com").locale == other  # type: ignore[union-attr]


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_unsubscribe_page_masks_the_address_and_offers_less_mail(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """The page shows d***@example.com, and offers fewer topics or the digest before leaving."""
    words = WORDS[lang]
    subscriber = add_subscriber(db, "duzhe@example.com", locale=lang)
    unsubscribe = path_of(live_server.app, "unsubscribe", subscriber)
    open_in(page, live_server, lang, unsubscribe)
    assert "d***@example.com" in page.locator("main").inner_text()
    assert "duzhe@example.com" not in page.content()
    fits(page)
    page.get_by_role("link", name=words["fewer"]).click()
    assert page.locator("h1").inner_text() == words["preferences"]
    page.goto(live_server.url + unsubscribe)
    page.get_by_role("link", name=words["digest_instead"]).click()
    assert page.locator("input[name=format][value=digest]").is_checked()
    assert fresh(db, "duzhe@example.com").format == "full"  # type: ignore[union-attr]
    page.get_by_role("button", name=words["save"]).click()
    assert page.locator(".flash").all_inner_texts() == [words["digest_saved"]]
    after = fresh(db, "duzhe@example.com")
    assert after is not None and (after.status, after.format) == ("active", "digest")


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_too_many_attempts_page_says_how_long_to_wait(
    live_server: LiveServer, page: Any, lang: str
) -> None:
    """Past the per-visitor limit, the 429 page says how long to wait, in the visitor's language."""
    live_server.app.config["SUBSCRIBE_RATE_LIMIT"] = "1 per hour"
    words = WORDS[lang]
    open_in(page, live_server, lang, "/subscribe")
    page.locator("input[name=email]").fill("first@example.com")
    page.get_by_role("button", name=words["subscribe"], exact=True).click()
    page.goto(live_server.url + "/subscribe")
    page.locator("input[name=email]").fill("second@example.com")
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name=words["subscribe"], exact=True).click()
    assert answer.value.status == 429
    assert words["wait_hour"] in page.locator("main").inner_text()
    fits(page)


def test_per_address_refusal_names_the_whole_window(app: Flask, client: FlaskClient) -> None:
    """The per-address limit tells its full window (not when it frees, which would tell when
    the address was last tried), in English when the visitor chose English."""
    app.config["SUBSCRIBE_ADDRESS_RATE_LIMIT"] = "1 per 10 minutes"
    client.get("/subscribe?lang=en")
    data = signup_form(client, "someone@example.com", website="x")
    assert client.post("/subscribe", data=data).status_code == 200
    refused = client.post("/subscribe", data=signup_form(client, "someone@example.com"))
    assert refused.status_code == 429
    assert "Wait 10 minutes, then try again." in refused.get_data(as_text=True)
    # The header may name a later time (the per-visitor limit's), never an earlier one.
    assert int(refused.headers["Retry-After"]) >= 600


def test_a_form_sent_twice_sends_one_confirmation(
    app: Flask, client: FlaskClient, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """The same signup posted twice (a double click, a reload) gives one confirmation email;
    a corrected choice sent right after still gets its own."""
    address = "double@example.com"
    for _ in range(2):
        response = client.post("/subscribe", data=signup_form(client, address))
        assert response.status_code == 200
    corrected = signup_form(client, address, topics=["policy", "companies", "data"])
    assert client.post("/subscribe", data=corrected).status_code == 200

    def settled() -> bool:
        db.expire_all()
        waiting = db.scalar(select(func.count()).select_from(SignupRequest))
        queued = db.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
        db.rollback()
        return waiting == 0 and queued == 0 and len(smtp_sink.to(address)) >= 2

    wait_until(settled)
    confirms = db.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "confirm")
    )
    assert confirms == 2 and len(smtp_sink.to(address)) == 2
    subscriber = fresh(db, address)
    assert subscriber is not None and set(subscriber.topics) == {"policy", "companies", "data"}


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_every_reader_page_fits_a_phone(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """Every page a reader can reach, at 375 px, in both languages: a heading, no sideways scroll,
    even with a long address on it."""
    app = live_server.app
    store(db)
    long_address = "a-rather-long-address-without-any-break-in-it-at-all@example-newsletter.org"
    active = add_subscriber(
        db, long_address, locale=lang, organisation="某某集成电路产业研究院有限公司"
    )
    pending = add_subscriber(db, "pending@example.com", locale=lang, status="pending")
    bounced = add_subscriber(db, "bounced@example.com", locale=lang, status="bounced")
    left = add_subscriber(db, "left@example.com", locale=lang, status="unsubscribed")
    db.add(Suppression(email_hash=bounced.email_hash, reason="bounce"))
    db.commit()
    confirm = path_of(app, "confirm", pending)
    paths = [
        "/subscribe",
        "/preferences/link",
        confirm,
        path_of(app, "preferences", active),
        path_of(app, "preferences", active) + "?format=digest",
        path_of(app, "preferences", left),
        path_of(app, "unsubscribe", active),
        path_of(app, "unsubscribe", left),
        "/preferences/nonsense",
        "/issues/",
        "/issues/361",
        "/issues/361/28",
        "/no-such-page",
    ]
    for path in paths:
        open_in(page, live_server, lang, path)
        assert page.locator("h1").first.inner_text().strip(), path
        fits(page)
    # Pages reached by a button: check your inbox, confirmed twice, blocked.
    open_in(page, live_server, lang, "/subscribe")
    page.locator("input[name=email]").fill("new@example.com")
    page.get_by_role("button", name=WORDS[lang]["subscribe"], exact=True).click()
    fits(page)
    open_in(page, live_server, lang, confirm)
    page.get_by_role("button", name=WORDS[lang]["confirm"]).click()
    page.goto(live_server.url + confirm)
    assert page.locator("h1").inner_text() == WORDS[lang]["confirmed"]
    fits(page)
    open_in(page, live_server, lang, path_of(app, "confirm", bounced))
    page.get_by_role("button", name=WORDS[lang]["confirm"]).click()
    assert page.locator("h1").inner_text().strip()
    fits(page)
