"""Segments: which articles a reader gets, and the per-recipient values of a finished render.

A *segment* is one (topics, format, language) choice. An issue is rendered once per segment;
each recipient's copy is then made by filling a few *slots* (greeting, unsubscribe,
preferences and view-online links) into that finished HTML and text, without rendering again.

A slot is written into the render as a placeholder carrying a random nonce drawn for that
render, so no article text can contain one by accident; values are HTML-escaped for the HTML
part and left as they are for the text part.
"""

from __future__ import annotations

import html
import itertools
import re
import secrets
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol

from core import i18n
from core.config import LOCALES

FORMATS = ("full", "digest")
SLOTS = ("greeting", "unsubscribe_url", "preferences_url", "view_online_url")
# The most bytes a slot's HTML-escaped value may take; the size budget reserves this much.
SLOT_LIMITS = {
    "greeting": 512,
    "unsubscribe_url": 512,
    "preferences_url": 512,
    "view_online_url": 512,
}
NAME_LIMIT = 60  # characters of a reader's name shown in the greeting
SAMPLE_EMAIL = "reader@example.org"


class SegmentError(ValueError):
    """A segment was asked for with a topic, format or language that does not exist."""


class ArticleContent(Protocol):
    """What rendering needs of an article, stored (mailer.models) or parsed (mailer.importer)."""

    @property
    def title(self) -> str: ...
    @property
    def byline(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def summary(self) -> str: ...
    @property
    def topics(self) -> Sequence[str]: ...
    @property
    def blocks(self) -> Sequence[Mapping[str, Any]]: ...


class SectionContent(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def topics(self) -> Sequence[str]: ...
    @property
    def articles(self) -> Sequence[ArticleContent]: ...


class IssueContent(Protocol):
    @property
    def number(self) -> int | None: ...
    @property
    def title(self) -> str: ...
    @property
    def period(self) -> str | None: ...
    @property
    def sections(self) -> Sequence[SectionContent]: ...


@dataclass(frozen=True)
class Segment:
    """Topics (sorted, as ``TopicSet`` stores them), format and language of one render."""

    topics: tuple[str, ...]
    format: str
    locale: str

    @property
    def key(self) -> str:
        """The segment as one URL-safe string: ``data,policy/full/zh``."""
        return f"{','.join(self.topics)}/{self.format}/{self.locale}"


def make_segment(
    topics: Sequence[str], format: str, locale: str, known_topics: Sequence[str]
) -> Segment:
    """A checked segment; a SegmentError says in one sentence what is wrong."""
    chosen = tuple(sorted({topic.strip() for topic in topics if topic.strip()}))
    if not chosen:
        raise SegmentError(f"Choose at least one topic of {', '.join(known_topics)}.")
    unknown = [topic for topic in chosen if topic not in known_topics]
    if unknown:
        raise SegmentError(
            f"{unknown[0]!r} is not a topic; the topics are {', '.join(known_topics)}."
        )
    if format not in FORMATS:
        raise SegmentError(f"The format must be full or digest, not {format!r}.")
    if locale not in LOCALES:
        raise SegmentError(f"The language must be zh or en, not {locale!r}.")
    return Segment(chosen, format, locale)


def topic_combinations(known_topics: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty set of topics a reader can choose (7 for three topics)."""
    ordered = sorted(known_topics)
    return [
        combination
        for size in range(1, len(ordered) + 1)
        for combination in itertools.combinations(ordered, size)
    ]


def all_segments(known_topics: Sequence[str]) -> list[Segment]:
    """Every segment an issue can be sent as: topic choices × formats × languages."""
    return [
        Segment(topics, format, locale)
        for topics in topic_combinations(known_topics)
        for format in FORMATS
        for locale in LOCALES
    ]


# --- Which articles -----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """An article with its number: its 1-based position in the whole issue."""

    number: int
    article: ArticleContent


@dataclass(frozen=True)
class Part:
    """A section as a reader sees it: only the articles of their topics."""

    name: str
    entries: tuple[Entry, ...]


def numbered(issue: IssueContent) -> list[Part]:
    """Every section with every article, numbered in issue order."""
    parts, number = [], 0
    for section in issue.sections:
        entries = []
        for article in section.articles:
            number += 1
            entries.append(Entry(number, article))
        parts.append(Part(section.name, tuple(entries)))
    return parts


def goes_to(article: ArticleContent, topics: Sequence[str]) -> bool:
    """Whether a reader of ``topics`` gets ``article``.

    An article's own topics decide: none means every reader (the importer leaves the
    articles of every-reader sections untagged, and an editor may untag one to send it to
    all); otherwise the reader gets it when one of their topics is among them.
    """
    return not article.topics or not set(article.topics).isdisjoint(topics)


def included(issue: IssueContent, topics: Sequence[str]) -> list[Part]:
    """The sections and articles a reader of ``topics`` receives, in issue order."""
    parts = []
    for part in numbered(issue):
        entries = tuple(entry for entry in part.entries if goes_to(entry.article, topics))
        if entries:
            parts.append(Part(part.name, entries))
    return parts


def find_article(issue: IssueContent, number: int) -> tuple[Part, Entry] | None:
    """The section and article with archive number ``number``, or None."""
    for part in numbered(issue):
        for entry in part.entries:
            if entry.number == number:
                return part, entry
    return None


# --- Per-recipient slots ------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """One reader, with the signed links made for them."""

    email: str
    name: str | None
    locale: str
    unsubscribe_url: str
    preferences_url: str
    # A campaign reader's id: their List-Unsubscribe mailto then carries a token naming them
    # (mailer.verp); None for samples and test sends, which get the plain mailto.
    subscriber_id: int | None = None


def sample_recipient(config: Mapping[str, Any], locale: str) -> Recipient:
    """The made-up reader that previews and the render command fill the slots with.

    Its links carry no valid token, so following one shows the "link not valid" page.
    """
    base = str(config["BASE_URL"]).rstrip("/")
    name = i18n.translations(locale).gettext("Sample Reader")
    return Recipient(
        SAMPLE_EMAIL,
        name,
        locale,
        f"{base}/unsubscribe/sample-not-a-real-token",
        f"{base}/preferences/sample-not-a-real-token",
    )


class Slots:
    """The placeholders of one render: each names a slot and carries the render's nonce."""

    def __init__(self, nonce: str | None = None) -> None:
        self.nonce = nonce or secrets.token_hex(8)
        self.pattern = re.compile(rf"\[\[nl-{self.nonce}-([a-z_]+)\]\]")

    def __getitem__(self, slot: str) -> str:
        if slot not in SLOTS and slot != "name":
            raise KeyError(slot)
        return f"[[nl-{self.nonce}-{slot}]]"

    def intact(self, rendered: str) -> bool:
        """True when the nonce occurs only inside well-formed placeholders of known slots."""
        found = self.pattern.findall(rendered)
        return rendered.count(self.nonce) == len(found) and set(found) <= set(SLOTS)

    def reserve(self, rendered: str) -> int:
        """Bytes to add to ``rendered``'s size for the largest values its slots may receive."""
        return sum(SLOT_LIMITS[slot] - len(self[slot]) for slot in self.pattern.findall(rendered))

    def fill(self, rendered: str, values: Mapping[str, str]) -> str:
        """``rendered`` with every placeholder replaced, in one pass (values are not rescanned)."""
        return self.pattern.sub(lambda match: values[match.group(1)], rendered)


@dataclass(frozen=True)
class Personalised:
    html: str
    text: str


def clean_name(name: str | None) -> str:
    """A reader's name fit for a greeting: one line, control characters gone, not too long."""
    words = "".join(char if char.isprintable() else " " for char in name or "").split()
    return " ".join(words)[:NAME_LIMIT]


def slot_values(
    recipient: Recipient, greetings: tuple[str, str], name_mark: str, view_online_url: str
) -> dict[str, str]:
    """The plain-text value of each slot for ``recipient``.

    ``greetings`` is (with a name, without one); the first holds ``name_mark`` where the
    name goes.
    """
    name = clean_name(recipient.name)
    greeting = greetings[0].replace(name_mark, name) if name else greetings[1]
    return {
        "greeting": greeting,
        "unsubscribe_url": recipient.unsubscribe_url,
        "preferences_url": recipient.preferences_url,
        "view_online_url": view_online_url,
    }


def escaped_values(values: Mapping[str, str]) -> dict[str, str]:
    """Slot values escaped for HTML text and double-quoted attributes, checked against limits."""
    escaped = {slot: html.escape(value, quote=True) for slot, value in values.items()}
    for slot, value in escaped.items():
        if len(value.encode("utf-8")) > SLOT_LIMITS[slot]:
            label = slot.replace("_", " ")
            raise ValueError(
                f"The {label} is longer than {SLOT_LIMITS[slot]} bytes and would break the size budget."
            )
    return escaped
