"""Segments on the real seed issue: who gets which article, and per-recipient slots.

The seed's sections 芯动态, 芯观点 and 芯伙伴 go to everyone; 芯企业, 芯资讯 and 芯政策 are
tagged companies, data and policy. Every topic choice is checked article by article, in
the rendered HTML and text of both formats and both languages.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from core.config import DEFAULTS
from issues.importer import ParsedIssue
from issues.importer import parse_issue
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import SegmentError
from mailer.segments import Slots
from mailer.segments import included
from mailer.segments import make_segment
from mailer.segments import numbered
from mailer.segments import topic_combinations
from tests.helpers import SEED

TOPICS = ("policy", "companies", "data")
EVERYONE_SECTIONS = {"芯动态", "芯观点", "芯伙伴"}
SECTION_TOPIC = {"芯企业": "companies", "芯资讯": "data", "芯政策": "policy"}


@cache
def seed() -> ParsedIssue:
    """The seed issue, parsed once; its absence is a failure, not a skip."""
    assert SEED.is_file(), f"the seed issue is missing: {SEED}"
    return parse_issue(SEED.read_bytes(), filename=SEED.name)


def config(**overrides: Any) -> dict[str, Any]:
    """The default configuration, with a public https address for links."""
    settings = {key: default for key, (default, _) in DEFAULTS.items()}
    settings.update(BASE_URL="https://news.example.org", MESSAGE_ID_DOMAIN="example.org")
    settings.update(overrides)
    return settings


def expected_numbers(topics: tuple[str, ...]) -> set[int]:
    """Article numbers a reader of ``topics`` must get, worked out from the section names."""
    wanted: set[int] = set()
    for part in numbered(seed()):
        if part.name in EVERYONE_SECTIONS or SECTION_TOPIC[part.name] in topics:
            wanted.update(entry.number for entry in part.entries)
    return wanted


def test_three_topics_make_seven_choices() -> None:
    """Every non-empty topic set is a choice: 3 single, 3 pairs, 1 with all three."""
    choices = topic_combinations(TOPICS)
    assert len(choices) == 7 == len(set(choices))
    assert ("companies", "data", "policy") in choices and ("policy",) in choices


@pytest.mark.parametrize("topics", topic_combinations(TOPICS), ids=",".join)
def test_included_articles_follow_the_sections_topics(topics: tuple[str, ...]) -> None:
    """Everyone-sections always come; a topic section only to readers who chose its topic."""
    numbers = {entry.number for part in included(seed(), topics) for entry in part.entries}
    assert numbers == expected_numbers(topics)
    assert {1, 2, 3, 4, 34} <= numbers


@pytest.mark.parametrize("topics", topic_combinations(TOPICS), ids=",".join)
@pytest.mark.parametrize("edition", ["full", "digest"])
@pytest.mark.parametrize("locale", ["zh", "en"])
def test_rendered_segment_holds_exactly_its_articles(
    topics: tuple[str, ...], edition: str, locale: str
) -> None:
    """The HTML has an anchor and the text a link for each included article, none for others."""
    rendered = render_segment(seed(), make_segment(topics, edition, locale, TOPICS), config())
    wanted = expected_numbers(topics)
    for number in range(1, 35):
        in_html = f'id="a{number}"' in rendered.html
        in_text = f"https://news.example.org/issues/361/{number}?lang={locale}\n" in rendered.text
        assert in_html == in_text == (number in wanted), number
    assert set(rendered.articles) == wanted


def test_a_policy_reader_gets_no_companies_article() -> None:
    """Choosing only policy leaves out every 芯企业 and 芯资讯 headline."""
    rendered = render_segment(seed(), make_segment(["policy"], "full", "zh", TOPICS), config())
    companies = [part for part in numbered(seed()) if part.name in ("芯企业", "芯资讯")]
    titles = [entry.article.title for part in companies for entry in part.entries]
    assert len(titles) == 25
    assert not [title for title in titles if title in rendered.html or title in rendered.text]


@pytest.mark.parametrize(
    ("topics", "edition", "locale", "words"),
    [
        ([], "full", "zh", "at least one topic"),
        (["sports"], "full", "zh", "'sports' is not a topic"),
        (["policy"], "weekly", "zh", "full or digest"),
        (["policy"], "full", "fr", "zh or en"),
    ],
)
def test_bad_segment_is_refused_in_one_sentence(
    topics: list[str], edition: str, locale: str, words: str
) -> None:
    """An unknown topic, format or language is a SegmentError that says what is allowed."""
    with pytest.raises(SegmentError, match=words):
        make_segment(topics, edition, locale, TOPICS)


def recipient(name: str | None, token: str = "tok") -> Recipient:
    return Recipient(
        "reader@example.com",
        name,
        "en",
        f"https://news.example.org/unsubscribe/{token}?a=1&b=2",
        f"https://news.example.org/preferences/{token}",
    )


def test_slot_values_are_escaped_for_html_and_kept_plain_in_text() -> None:
    """A name with markup is inert in the HTML part and unchanged in the text part."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    personal = rendered.personalise(recipient('<b>Li & "Wang"</b>'))
    assert "Dear &lt;b&gt;Li &amp; &quot;Wang&quot;&lt;/b&gt;," in personal.html
    assert '<b>Li & "Wang"</b>' not in personal.html
    assert 'Dear <b>Li & "Wang"</b>,' in personal.text
    assert 'href="https://news.example.org/unsubscribe/tok?a=1&amp;b=2"' in personal.html
    assert "https://news.example.org/unsubscribe/tok?a=1&b=2" in personal.text
    assert rendered.slots.nonce not in personal.html + personal.text


def test_personalising_only_changes_the_slots() -> None:
    """Two recipients' copies differ only where their own values stand (no second render)."""
    rendered = render_segment(seed(), make_segment(["policy"], "full", "zh", TOPICS), config())
    first = rendered.personalise(recipient("Ann", "AAA"))
    second = rendered.personalise(recipient(None, "BBB"))
    assert "Ann，您好：" in first.html and "读者您好：" in second.html
    normalised = second.html.replace("BBB", "AAA").replace("读者您好：", "Ann，您好：")
    assert normalised == first.html
    assert len(first.html.encode()) <= rendered.html_bytes


def test_a_name_that_looks_like_a_placeholder_is_not_expanded() -> None:
    """Values are filled in one pass: a placeholder inside a value stays literal text."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    sneaky = rendered.slots["unsubscribe_url"]
    personal = rendered.personalise(recipient(sneaky))
    assert personal.text.count("https://news.example.org/unsubscribe/tok") == 1
    assert "[[nl-" in personal.text


def test_slots_notice_a_nonce_that_appears_outside_a_placeholder() -> None:
    """If the article text ever contained the render's nonce, the render would not count as intact."""
    slots = Slots("0123456789abcdef")
    assert slots.intact(f"<p>{slots['greeting']}</p>")
    assert not slots.intact(f"<p>{slots['greeting']} 0123456789abcdef</p>")
    assert not slots.intact("[[nl-0123456789abcdef-password]]")


def test_overlong_slot_values_are_refused() -> None:
    """A URL too long for the room the budget reserved is refused, not silently sent."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    with pytest.raises(ValueError, match="unsubscribe url is longer than"):
        rendered.personalise(recipient("Ann", "x" * 600))
