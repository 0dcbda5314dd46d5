"""A reader's language follows them (issue 12): every link in their emails opens pages in the
language they chose, a visitor without a choice gets their browser's language, and ``?lang=``
wins and is remembered."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.i18n import browser_locale
from issues import store as issues
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from subscribers import links
from tests.conftest import LiveServer
from tests.conftest import SmtpSink
from tests.helpers import csrf_token
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import sent_to
from tests.test_subscribe import signup_form

HTML_LANG = re.compile(r'<html lang="([^"]+)"')
# What the page's <html lang> says for each of our languages.
PAGE_LANG = {"zh": "zh-CN", "en": "en"}
OTHER = {"zh": "en", "en": "zh"}
BROWSER = {"zh": "zh-CN,zh;q=0.9", "en": "en-GB,en;q=0.9"}


def page_lang(response: Any) -> str:
    match = HTML_LANG.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:300]
    return match.group(1)


def local(url: str, base: str) -> str:
    assert url.startswith(base), url
    return url.removeprefix(base)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("en", "en"),
        ("zh-TW,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hans-CN", "zh"),
        ("fr-FR,fr;q=0.9", "zh"),
        ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
        ("zh;q=0.2,en;q=0.8", "en"),
        ("en;q=0,zh;q=0.1", "zh"),
        ("", "zh"),
    ],
)
def test_a_visitor_without_a_choice_gets_the_browser_language(
    client: FlaskClient, header: str, expected: str
) -> None:
    """No ?lang= and no cookie: zh-* gives Chinese, en-* English, anything else Chinese."""
    headers = {"Accept-Language": header} if header else {}
    response = client.get("/subscribe", headers=headers)
    assert page_lang(response) == PAGE_LANG[expected]
    assert "Accept-Language" in response.headers.get("Vary", "")


def test_browser_locale_reads_tags_and_qualities() -> None:
    """The pure rule: our first language by quality, primary tag only, None if neither."""
    assert browser_locale([("de", 1.0), ("en-AU", 0.7), ("zh", 0.5)]) == "en"
    assert browser_locale([("zh_TW", 1.0)]) == "zh"
    assert browser_locale([("*", 1.0), ("ja", 0.8)]) is None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_lang_in_the_address_wins_over_the_browser_and_is_remembered(
    client: FlaskClient, lang: str
) -> None:
    """?lang= beats Accept-Language, and later pages without it keep that language."""
    browser = {"Accept-Language": BROWSER[OTHER[lang]]}
    assert page_lang(client.get(f"/subscribe?lang={lang}", headers=browser)) == PAGE_LANG[lang]
    assert page_lang(client.get("/preferences/link", headers=browser)) == PAGE_LANG[lang]
    # A value that is not one of ours changes nothing.
    assert page_lang(client.get("/subscribe?lang=fr", headers=browser)) == PAGE_LANG[lang]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("browser", "expected"), [("en-US", "en"), ("zh-TW", "zh"), ("fr-FR", "zh")]
)
def test_chromium_gets_pages_in_its_language(
    chromium: Any, live_server: LiveServer, browser: str, expected: str
) -> None:
    """A real browser set to English, Taiwanese Chinese or French sees English, Chinese, Chinese."""
    context = chromium.new_context(viewport={"width": 375, "height": 740}, locale=browser)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/subscribe")
        assert page.locator("html").get_attribute("lang") == PAGE_LANG[expected]
        button = page.locator("form button[type=submit]").first.inner_text()
        assert ("Subscribe" in button) == (expected == "en"), button
        page.goto(live_server.url + "/subscribe?lang=" + OTHER[expected])
        page.goto(live_server.url + "/preferences/link")
        assert page.locator("html").get_attribute("lang") == PAGE_LANG[OTHER[expected]]
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_link_in_a_readers_emails_opens_pages_in_their_language(
    app: Flask,
    client: FlaskClient,
    db: Session,
    smtp_sink: SmtpSink,
    celery_worker: object,
    lang: str,
) -> None:
    """Confirm, preferences, view online, unsubscribe and resubscribe all speak the language the
    reader chose at signup, though the browser asks for the other one and has no cookie."""
    base = str(app.config["BASE_URL"])
    browser = {"Accept-Language": BROWSER[OTHER[lang]]}
    address = f"{lang}-reader@example.com"
    client.post("/subscribe", data=signup_form(client, address, language=lang))
    [message] = sent_to(smtp_sink, address)
    found = re.search(re.escape(base) + r"/confirm/\S+", message.get_body(("plain",)).get_content())
    assert found and found.group(0).endswith(f"?lang={lang}"), found
    confirm = local(found.group(0), base)

    reader = app.test_client()  # another device: no cookie, a browser in the other language
    assert page_lang(reader.get(confirm, headers=browser)) == PAGE_LANG[lang]
    confirmed = reader.post(
        confirm, data={"csrf_token": csrf_token(reader, confirm)}, headers=browser
    )
    assert confirmed.status_code == 302
    assert page_lang(reader.get(confirmed.headers["Location"], headers=browser)) == PAGE_LANG[lang]

    subscriber = fresh(db, address)
    assert subscriber is not None and subscriber.status == "active"
    issues.store_issue(db, seed()).issue.status = "ready"
    db.commit()
    with app.app_context():
        recipient = Recipient(
            address,
            None,
            lang,
            links.unsubscribe_url(subscriber),
            links.preferences_url(subscriber),
        )
    segment = make_segment(TOPICS, "digest", lang, TOPICS)
    email = render_segment(seed(), segment, config(BASE_URL=base)).personalise(recipient)
    hrefs = dict.fromkeys(re.findall(r'href="([^"#]+)"', email.html))
    wanted = {
        "view online": f"{base}/issues/361?lang={lang}",
        "preferences": recipient.preferences_url,
        "unsubscribe": recipient.unsubscribe_url,
    }
    for kind, url in wanted.items():
        assert url.endswith(f"?lang={lang}") and url in hrefs, kind
        fresh_device = app.test_client()
        assert page_lang(fresh_device.get(local(url, base), headers=browser)) == PAGE_LANG[lang]

    leaving = app.test_client()
    unsubscribe = local(recipient.unsubscribe_url, base)
    left = leaving.post(
        unsubscribe,
        data={"csrf_token": csrf_token(leaving, unsubscribe)},
        headers=browser,
        follow_redirects=True,
    )
    assert page_lang(left) == PAGE_LANG[lang]
    action = re.search(r'action="(/resubscribe/[^"]+)"', left.get_data(as_text=True))
    assert action, left.get_data(as_text=True)
    back = leaving.post(
        action.group(1).replace("&amp;", "&"),
        data={"csrf_token": csrf_token(leaving, unsubscribe)},
        headers=browser,
    )
    assert back.status_code == 200 and page_lang(back) == PAGE_LANG[lang]


def test_a_reader_stored_with_a_language_gets_links_that_carry_it(app: Flask, db: Session) -> None:
    """Links made for a reader (as campaigns and notices make them) end in their language."""
    english = add_subscriber(db, "e@example.com", locale="en")
    chinese = add_subscriber(db, "c@example.com", locale="zh")
    with app.app_context():
        for kind in ("confirm", "preferences", "unsubscribe"):
            assert getattr(links, f"{kind}_url")(english).endswith("?lang=en")
            assert getattr(links, f"{kind}_url")(chinese).endswith("?lang=zh")
