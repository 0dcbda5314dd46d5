"""The issue email as a reader meets it (issue 12): a notice where long articles became
excerpts, contents grouped by section whose every entry leads somewhere even where in-email
jumps do nothing (Gmail on iOS, Yahoo's apps), long Latin words and URLs that never widen
the email where overflow-wrap is ignored, and a footer with the association's name, postal
address and why the reader gets it. Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest

from mailer.render import RenderedSegment
from mailer.render import render_segment
from mailer.segments import make_segment
from mailer.segments import numbered
from mailer.segments import sample_recipient
from tests.conftest import horizontal_overflow
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

NOTICE = {
    "zh": "本期有 11 篇长文只列摘要，点击标题阅读全文。",
    "en": "11 long articles in this issue are shown as excerpts: click a title to read the full article.",
}
ONE = {
    "zh": "本期有 1 篇长文只列摘要，点击标题阅读全文。",
    "en": "1 long article in this issue is shown as an excerpt: click its title to read it in full.",
}
WHY = {
    "zh": "您收到这封邮件，是因为您订阅了《天堂之芯》全文版，主题：",
    "en": "You get this email because you subscribed to the full edition of 天堂之芯, topics: ",
}
LANGUAGE_NOTE = {
    "zh": "您选择的语言决定邮件里的提示和链接；文章保持原来的语言。",
    "en": "Your language sets the words and links of this email; the articles stay in the language",
}
ADDRESS = "浙江省杭州市西湖区文三路 90 号\n邮编 310012"

# The contents list as the email draws it: each section's name, then its entries with the
# href of every link in them.
CONTENTS = """() => [...document.querySelectorAll('ul.toc > li')].map(li => ({
  section: li.classList.contains('toc-sec'),
  text: li.textContent.trim(),
  hrefs: [...li.querySelectorAll('a')].map(a => a.getAttribute('href')),
}))"""
# What Gmail on iOS and Yahoo's apps leave of a link to #anchor: nothing happens.
LIVE = """() => [...document.querySelectorAll('ul.toc > li:not(.toc-sec)')].filter(li =>
  ![...li.querySelectorAll('a')].some(a => /^https?:/.test(a.getAttribute('href') || ''))).length"""
# Clients that ignore overflow-wrap and word-break (Gmail, Outlook.com, Yahoo).
NO_WRAP = "* { overflow-wrap: normal !important; word-break: normal !important; }"
LONG_URL = "https://www.example-semiconductor-association.org.cn/reports/2023/annual-wafer-capacity-statistics-final-version.pdf"
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 2


def heaviest(locale: str, **settings: Any) -> RenderedSegment:
    return render_segment(seed(), make_segment(TOPICS, "full", locale, TOPICS), config(**settings))


def personal_html(rendered: RenderedSegment) -> str:
    return rendered.personalise(sample_recipient(config(), rendered.segment.locale)).html


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_shortened_articles_are_announced_once_near_the_top(locale: str) -> None:
    """The heaviest edition says once, before the contents, how many articles are excerpts."""
    rendered = heaviest(locale)
    assert len(rendered.shortened) == 11
    html = personal_html(rendered)
    assert html.count(NOTICE[locale]) == 1
    assert html.index(NOTICE[locale]) < html.index('class="toc"')
    assert NOTICE[locale] in rendered.text
    whole = render_segment(seed(), make_segment(["companies"], "full", locale, TOPICS), config())
    assert not whole.shortened and "只列摘要" not in whole.html and "excerpts" not in whole.html
    one = render_segment(seed(), make_segment(["policy"], "full", locale, TOPICS), config())
    assert len(one.shortened) == 1
    assert ONE[locale] in one.html


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["zh", "en"])
def test_contents_are_grouped_by_section_and_every_entry_leads_somewhere(
    page: Any, locale: str
) -> None:
    """Sections in issue order, each followed by its own articles; without #anchor jumps every
    entry still links to its article on the website, and the anchors that exist do jump."""
    rendered = heaviest(locale)
    page.set_content(personal_html(rendered))
    contents = page.evaluate(CONTENTS)
    expected: list[tuple[bool, str]] = []
    for part in numbered(seed()):
        expected.append((True, part.name))
        expected.extend((False, entry.article.title) for entry in part.entries)
    drawn = [(row["section"], row["text"].replace("\u200b", "")) for row in contents]
    assert [(section, text) for section, text in drawn if section] == [
        item for item in expected if item[0]
    ]
    titles = [title for is_section, title in expected if not is_section]
    entries = [row for row in contents if not row["section"]]
    assert len(entries) == len(titles) == 34
    shortened = {item.number for item in rendered.shortened}
    for number, (row, title) in enumerate(zip(entries, titles, strict=True), start=1):
        assert row["text"].replace("\u200b", "").startswith(title)
        url = f"https://news.example.org/issues/361/{number}?lang={locale}"
        assert url in row["hrefs"], row
        if number in shortened:
            assert row["hrefs"] == [url]
        else:
            assert row["hrefs"] == [f"#a{number}", url]
            assert page.locator(f"#a{number}").count() == 1
    assert page.evaluate(LIVE) == 0


def long_issue() -> Any:
    @dataclass
    class Piece:
        title: str
        byline: str | None = None
        source: str | None = LONG_URL
        summary: str = ""
        topics: list[str] = field(default_factory=list)

        @property
        def blocks(self) -> list[dict[str, Any]]:
            return [
                {"type": "paragraph", "text": f"详见{LONG_URL}，其中{LONG_WORD}一词。"},
                {"type": "heading", "text": LONG_WORD, "level": 1},
                {"type": "caption", "text": f"图：{LONG_URL}"},
            ]

    @dataclass
    class Part:
        name: str
        articles: list[Piece]
        topics: list[str] = field(default_factory=list)

    @dataclass
    class Made:
        sections: list[Part]
        number: int = 999
        title: str = "天堂之芯"
        period: str | None = "2026-05"

    return Made([Part("芯动态", [Piece(f"报告{LONG_WORD}"), Piece("短标题")])])


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["zh", "en"])
@pytest.mark.parametrize("edition", ["full", "digest"])
def test_long_latin_words_and_urls_never_widen_the_email(
    page: Any, locale: str, edition: str
) -> None:
    """At 375 px, with overflow-wrap and word-break switched off as Gmail, Outlook.com and
    Yahoo do, a 90-letter word and a 110-character URL in titles, text and sources still
    fit; the words read the same once the invisible break points are removed."""
    rendered = render_segment(long_issue(), make_segment(TOPICS, edition, locale, TOPICS), config())
    html = rendered.personalise(sample_recipient(config(), locale)).html
    page.set_viewport_size({"width": 375, "height": 800})
    page.set_content(html)
    page.add_style_tag(content=NO_WRAP)
    assert horizontal_overflow(page) == 0
    text = page.evaluate("() => document.body.innerText").replace("\u200b", "")
    assert LONG_WORD in text and LONG_URL in text
    assert LONG_URL in rendered.text  # the plain-text part keeps it whole
    # Clients link an address in text only up to its first break point: the email links the
    # address in the article's text and source whole itself.
    hrefs = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)")
    if edition == "full":
        assert hrefs.count(LONG_URL) == 2 * 2 + 2  # paragraph and caption, source; two articles
    else:
        assert hrefs.count(LONG_URL) == 2 * 2  # excerpt (the opening paragraph) and source


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_footer_names_the_association_its_address_and_why(locale: str) -> None:
    """The footer gives the association's name and postal address (each line) from the
    settings, why the reader gets this email, and what their language choice changes."""
    rendered = heaviest(locale, ORGANISATION_NAME="浙江省半导体行业协会", POSTAL_ADDRESS=ADDRESS)
    html = personal_html(rendered)
    footer = html[html.index('class="pad footer"') :]
    assert "浙江省半导体行业协会 · 浙江省杭州市西湖区文三路 90 号 · 邮编 310012" in footer
    assert WHY[locale] in footer and LANGUAGE_NOTE[locale] in footer
    # Chinese sentences follow each other without a space (COPY_zh: full-width punctuation).
    assert "。 " not in footer
    # Topics in the one order readers see everywhere, not the stored alphabetical one.
    assert (
        WHY[locale] + ("政策、企业、数据。" if locale == "zh" else "Policy, Companies, Data.")
        in footer
    )
    text = rendered.text[rendered.text.index("\n--\n") :]
    assert "浙江省半导体行业协会 · 浙江省杭州市西湖区文三路 90 号 · 邮编 310012" in text
    assert WHY[locale] in text and LANGUAGE_NOTE[locale] in text
    # Without settings the sender's name stands for the association.
    plain = personal_html(heaviest(locale))
    assert "天堂之芯</p>" in plain[plain.index('class="pad footer"') :]


def test_footer_text_is_escaped() -> None:
    """A postal address with markup in it is shown as text, never as HTML."""
    rendered = heaviest("zh", POSTAL_ADDRESS='<a href="https://evil.example">点我</a>')
    assert '<a href="https://evil.example">' not in rendered.html
    assert "&lt;a href=" in rendered.html
