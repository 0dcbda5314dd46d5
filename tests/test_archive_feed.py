"""The archive for someone who arrives from a shared link or a feed reader: an Atom feed of
the published issues (parsed back with a real XML parser), link-preview meta, the magazine's
name once in each title, and a visible way to subscribe on every archive page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from issues.models import Article
from issues.models import Issue
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.test_archive import store

ATOM = "{http://www.w3.org/2005/Atom}"
PAGES = ("/issues/", "/issues/361", "/issues/361/28")


def feed(client: FlaskClient, query: str = "") -> ET.Element:
    response = client.get("/issues/feed.atom" + query)
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    return ET.fromstring(response.get_data())  # noqa: S314 - our own feed, under test


class _Meta(HTMLParser):
    """The <title> text and the <meta> tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("property") or values.get("name")):
            self.meta[str(values.get("property") or values.get("name"))] = values["content"] or ""
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def meta_of(client: FlaskClient, path: str) -> _Meta:
    parser = _Meta()
    parser.feed(client.get(path).get_data(as_text=True))
    return parser


def test_feed_lists_a_published_issue_with_its_articles(client: FlaskClient, db: Session) -> None:
    """A ready issue is one Atom entry: title, archive link, UTC time, its contents as HTML."""
    store(db)
    root = feed(client)
    assert root.tag == f"{ATOM}feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert root.findtext(f"{ATOM}title") == "天堂之芯"
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert (
        self_link is not None and self_link.get("href") == "http://newsletter.test/issues/feed.atom"
    )
    [entry] = root.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "天堂之芯 · 第361期 · 2023年2月"
    assert entry.findtext(f"{ATOM}id") == "http://newsletter.test/issues/361"
    updated = entry.findtext(f"{ATOM}updated") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", updated), updated
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    links = re.findall(r'href="http://newsletter\.test/issues/361/(\d+)"', content.text or "")
    assert [int(number) for number in links] == list(range(1, 35))
    assert "<h2>芯政策</h2>" in (content.text or "")
    assert (entry.findtext(f"{ATOM}summary") or "").strip()


def test_feed_leaves_out_drafts(client: FlaskClient, db: Session) -> None:
    """A draft is nobody's business but the editors': the feed is valid and has no entry."""
    store(db, status="draft")
    root = feed(client)
    assert root.findall(f"{ATOM}entry") == [] and root.findtext(f"{ATOM}updated")


def test_feed_survives_markup_and_control_characters(client: FlaskClient, db: Session) -> None:
    """An article title with <, &, quotes and a control character still gives well-formed XML."""
    store(db)
    article = db.scalars(select(Article).order_by(Article.id)).first()
    assert article is not None
    article.title = "A <b>&amp; \"x\" 'y'\x0b</b> & z"
    db.scalars(select(Issue)).one().title = "天堂之芯 <&>"
    db.commit()
    entry = feed(client).find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == "天堂之芯 <&> · 第361期 · 2023年2月"
    html = entry.findtext(f"{ATOM}content") or ""
    # The HTML inside carries the title as escaped text, never as markup.
    assert "A &lt;b&gt;&amp;amp; &#34;x&#34; &#39;y&#39;&lt;/b&gt; &amp; z" in html
    assert "<b>" not in html


def test_feed_speaks_english_when_asked(client: FlaskClient, db: Session) -> None:
    """?lang=en gives English issue lines and an English feed."""
    store(db)
    root = feed(client, "?lang=en")
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    title = root.findtext(f"{ATOM}entry/{ATOM}title") or ""
    assert title == "天堂之芯 · Issue no. 361 · February 2023", title


def test_feed_in_the_browser_language_tells_caches_so(client: FlaskClient, db: Session) -> None:
    """The feed without ?lang= follows the cookie and Accept-Language; a cache must know it."""
    store(db)
    english = client.get("/issues/feed.atom", headers={"Accept-Language": "en-GB"})
    assert english.mimetype == "application/atom+xml"
    assert b'xml:lang="en"' in english.get_data()
    vary = {name.strip() for name in english.headers.get("Vary", "").split(",")}
    assert {"Cookie", "Accept-Language"} <= vary
    # A static file reads the same in every language: one cached copy serves everyone.
    css = client.get("/static/css/site.css", headers={"Accept-Language": "en-GB"})
    assert css.status_code == 200
    assert "Accept-Language" not in css.headers.get("Vary", "")
    css.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_archive_pages_carry_link_preview_meta_and_one_brand(
    client: FlaskClient, db: Session, lang: str
) -> None:
    """Index, issue and article pages: description and og: tags, the name once in the title."""
    store(db)
    client.get(f"/issues/?lang={lang}")
    for path in PAGES:
        page = meta_of(client, path)
        assert page.title.count("天堂之芯") == 1, (path, page.title)
        for key in ("description", "og:title", "og:description", "og:url", "og:site_name"):
            assert page.meta.get(key, "").strip(), (path, key)
        assert page.meta["og:url"] == "http://newsletter.test" + path
        assert len(page.meta["description"]) <= 120
    article = meta_of(client, "/issues/361/28")
    assert article.meta["og:type"] == "article"
    assert article.meta["og:title"] in article.title


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_archive_page_shows_a_subscribe_link(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """At 375 px, each archive page has a visible link to the subscribe page, and no overflow."""
    store(db)
    label = {"zh": "订阅", "en": "Subscribe"}[lang]
    page.goto(f"{live_server.url}/issues/?lang={lang}")
    for path in PAGES:
        page.goto(live_server.url + path)
        link = page.get_by_role("link", name=label, exact=True)
        assert link.is_visible(), path
        assert horizontal_overflow(page) == 0, path
    link.click()
    assert page.url == live_server.url + "/subscribe"
    feed_link = page.locator("link[rel=alternate][type='application/atom+xml']")
    page.goto(f"{live_server.url}/issues/")
    assert feed_link.get_attribute("href") == "/issues/feed.atom"
