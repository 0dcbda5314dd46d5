"""Rendering an issue into email: the seed in every segment under budget, the layout's
promises (inlined CSS, media queries in head, masthead as text, preheader), both languages,
the plain-text part, shortening to fit, and the same result from the database as from a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
from sqlalchemy.orm import Session

from issues import store as issues
from issues.archive import load_by_number
from mailer.render import BudgetExceeded
from mailer.render import render_pair
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import all_segments
from mailer.segments import included
from mailer.segments import make_segment
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

BUDGET = 90_000


@pytest.mark.parametrize("segment", all_segments(TOPICS), ids=lambda segment: segment.key)
def test_every_seed_segment_renders_under_the_budget(segment: Any) -> None:
    """All 7 topic choices × 2 formats × 2 languages fit 90 000 bytes, recipient values included."""
    rendered = render_segment(seed(), segment, config())
    assert 0 < len(rendered.html.encode()) <= rendered.html_bytes <= BUDGET
    assert rendered.subject.startswith("天堂之芯 · ")
    if segment.format == "digest":
        assert rendered.shortened == ()


def test_full_edition_shortens_the_longest_articles_first() -> None:
    """Everything for all topics is too big; the longest articles become excerpts, named in order."""
    rendered = render_segment(seed(), make_segment(TOPICS, "full", "zh", TOPICS), config())
    shortened = [item.number for item in rendered.shortened]
    assert shortened and len(shortened) < len(rendered.articles)
    longest = max(seed().articles, key=lambda article: article.chars)
    assert seed().articles.index(longest) + 1 in shortened
    for number in shortened:
        link = rf'<a href="https://news.example.org/issues/361/{number}\?lang=zh" style="[^"]*">阅读全文'
        assert re.search(link, rendered.html), number
    kept = [a for a in rendered.articles if a not in shortened]
    assert all(f'id="a{number}"' in rendered.html for number in kept)


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_the_title_of_each_excerpt_links_to_its_article(locale: str) -> None:
    """The notice says "click the title to read the full article": in the full edition each
    shortened article's title is a link to its web article, a full article's title is not."""
    rendered = render_segment(seed(), make_segment(TOPICS, "full", locale, TOPICS), config())
    shortened = {item.number for item in rendered.shortened}
    assert shortened
    titles = re.findall(r'<td class="pad article"[^>]*>\s*<h3[^>]*>(.*?)</h3>', rendered.html)
    assert len(titles) == len(rendered.articles)
    for number, title in zip(rendered.articles, titles, strict=True):
        url = f"https://news.example.org/issues/361/{number}?lang={locale}"
        if number in shortened:
            assert re.fullmatch(rf'<a href="{re.escape(url)}"[^>]*>[^<]+</a>', title), number
        else:
            assert "<a " not in title, number


def test_a_smaller_budget_shortens_more_and_says_which() -> None:
    """A budget of about half shortens more articles, and the result still fits (with every
    excerpt's title a link, the seed's 34 excerpts alone take some 47 KB: exactly half of
    90 KB can no longer fit)."""
    segment = make_segment(TOPICS, "full", "en", TOPICS)
    normal = render_segment(seed(), segment, config())
    small = render_segment(seed(), segment, config(HTML_BUDGET_BYTES=48_000))
    assert small.html_bytes <= 48_000
    assert {item.number for item in normal.shortened} < {item.number for item in small.shortened}


def test_an_impossible_budget_is_refused_with_a_sentence() -> None:
    """When even excerpts do not fit, BudgetExceeded says the size and the budget."""
    with pytest.raises(BudgetExceeded, match=r"over the 5000-byte budget even with every article"):
        render_segment(
            seed(), make_segment(["policy"], "full", "zh", TOPICS), config(HTML_BUDGET_BYTES=5000)
        )


def test_email_layout_is_inlined_responsive_and_scriptless() -> None:
    """Styles are inlined, media queries (phone, dark mode) stay in head, no script, text masthead."""
    html = render_segment(seed(), make_segment(["data"], "full", "zh", TOPICS), config()).html
    head, body = html.split("</head>", 1)
    assert "@media screen and (max-width:620px)" in head
    assert "prefers-color-scheme:dark" in head
    assert '<meta name="color-scheme" content="light dark">' in head
    assert "<style" not in body and "<script" not in html.lower()
    assert re.search(r'<table[^>]*class="container"[^>]*style="[^"]*max-width:600px', body)
    assert re.search(r'<h1 class="brand" style="[^"]+">天堂之芯</h1>', body)
    assert "第361期 · 2023年2月" in body
    assert re.search(r'<div class="preheader" style="display:none[^"]*">[^<]+</div>', body)
    assert "<img" not in body
    assert '<div class="tbox" style="width:100%;max-width:100%;overflow-x:auto' in body


def test_fixed_text_follows_the_language() -> None:
    """Chinese and English editions differ in their fixed words, not in the magazine's content."""
    zh = render_segment(seed(), make_segment(["policy"], "digest", "zh", TOPICS), config())
    en = render_segment(seed(), make_segment(["policy"], "digest", "en", TOPICS), config())
    for words in ("阅读全文", "退订", "修改主题、格式或语言", "摘要版", "主题（政策）"):
        assert words in zh.html and words not in en.html
    for words in (
        "Read the full article",
        "Unsubscribe",
        "digest",
        "Issue no. 361 · February 2023",
    ):
        assert words in en.html
    assert '<html lang="zh-CN" dir="ltr">' in zh.html and '<html lang="en" dir="ltr">' in en.html
    assert zh.subject == "天堂之芯 · 第361期 · 2023年2月"


def test_text_part_lists_every_headline_with_source_and_link() -> None:
    """The plain-text alternative names each included article, its source and its archive link."""
    topics = ("companies",)
    rendered = render_segment(seed(), make_segment(topics, "digest", "zh", TOPICS), config())
    for part in included(seed(), topics):
        assert f"== {part.name} ==" in rendered.text
        for entry in part.entries:
            article = entry.article
            block = f"{article.title}\n"
            if article.byline:
                block += f"{article.byline}\n"
            if article.source:
                block += f"来源：{article.source}\n"
            block += f"https://news.example.org/issues/361/{entry.number}?lang=zh\n"
            assert block in rendered.text, article.title
    assert (
        "<p" not in rendered.text and "&lt;" not in rendered.text and "&amp;" not in rendered.text
    )


@dataclass
class FakeArticle:
    title: str
    byline: str | None = None
    source: str | None = None
    summary: str = ""
    topics: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeSection:
    name: str
    topics: list[str]
    articles: list[FakeArticle]


@dataclass
class FakeIssue:
    number: int | None
    title: str
    period: str | None
    sections: list[FakeSection]


def test_article_content_is_escaped_in_html_and_kept_in_text() -> None:
    """Markup in a title or a table cell is shown as text; the text part keeps it verbatim."""
    hostile = FakeArticle(
        "<script>alert(1)</script> & co",
        blocks=[
            {"type": "paragraph", "text": "bold <i>x</i>", "strong": [[0, 4]]},
            {"type": "table", "header": ["<th>"], "rows": [["1 < 2"]]},
        ],
    )
    issue = FakeIssue(7, "Mag", "2024-05", [FakeSection("S", [], [hostile])])
    rendered = render_segment(issue, make_segment(["data"], "full", "en", TOPICS), config())
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in rendered.html
    assert re.search(r"<strong[^>]*>bold</strong> &lt;i&gt;x&lt;/i&gt;", rendered.html)
    assert "1 &lt; 2" in rendered.html
    assert "<script>alert(1)</script> & co" in rendered.text and "1 < 2" in rendered.text


def test_an_address_in_an_excerpt_is_linked_whole() -> None:
    """A digest's excerpt that holds a long web address links the whole address: a client
    linking the shown text itself would stop at its first break point."""
    url = "https://www.example-semiconductor-association.org.cn/reports/2023/statistics.pdf"
    article = FakeArticle("A", summary=f"全文见{url}，欢迎下载。")
    issue = FakeIssue(9, "Mag", None, [FakeSection("S", [], [article])])
    rendered = render_segment(issue, make_segment(["data"], "digest", "zh", TOPICS), config())
    assert re.search(rf'全文见<a href="{re.escape(url)}"[^>]*>https://', rendered.html)


def test_an_issue_without_number_cannot_be_rendered() -> None:
    """Archive links need the number: rendering a number-less issue says so."""
    issue = FakeIssue(None, "Mag", None, [FakeSection("S", [], [FakeArticle("A")])])
    with pytest.raises(ValueError, match="no number"):
        render_segment(issue, make_segment(["data"], "full", "en", TOPICS), config())


def test_a_segment_without_articles_says_so() -> None:
    """A reader whose topics match nothing this month gets a plain sentence, not a blank email."""
    issue = FakeIssue(
        8, "Mag", None, [FakeSection("S", ["policy"], [FakeArticle("A", topics=["policy"])])]
    )
    rendered = render_segment(issue, make_segment(["data"], "digest", "zh", TOPICS), config())
    assert "本期没有与您关注的主题相关的文章。" in rendered.html
    assert "本期没有与您关注的主题相关的文章。" in rendered.text


def test_stored_issue_renders_like_the_parsed_file(app: Any, db: Session) -> None:
    """The same issue from the database and from the file gives the same email."""
    issues.store_issue(db, seed())
    db.commit()
    stored = load_by_number(db, 361)
    assert stored is not None
    segment = make_segment(["companies", "policy"], "full", "zh", TOPICS)
    reader = Recipient("a@example.com", "A", "zh", "https://x.test/u/1", "https://x.test/p/1")
    from_db = render_segment(stored, segment, config()).personalise(reader)
    from_file = render_segment(seed(), segment, config()).personalise(reader)
    assert from_db == from_file


def test_the_test_email_still_renders() -> None:
    """render_pair, which the outbox's test email uses, keeps working beside issue rendering."""
    html, text = render_pair("test", "zh", base_url="https://x.test", requested_by=None)
    assert "<table" in html and "https://x.test" in text


@pytest.mark.parametrize(("locale", "lang"), [("zh", "zh-CN"), ("en", "en")])
def test_language_and_direction_survive_clients_that_drop_the_html_element(
    locale: str, lang: str
) -> None:
    """<html> and a wrapper inside <body> both say the language and left-to-right direction."""
    html = render_segment(seed(), make_segment(["data"], "digest", locale, TOPICS), config()).html
    assert f'<html lang="{lang}" dir="ltr">' in html
    body = html.split("<body", 1)[1]
    wrapper = re.search(r'<div role="article" aria-roledescription="email"[^>]*>', body)
    assert wrapper is not None and body.index(wrapper.group()) < body.index("<table")
    assert f'lang="{lang}"' in wrapper.group() and 'dir="ltr"' in wrapper.group()
    assert not re.search(r"""(src|background)=|<link|url\(""", html)
