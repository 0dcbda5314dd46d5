"""Importing an issue: file bytes in, a structured issue in memory out.

This is the pure first step of the send pipeline; storing, the CLI and the editor page
build on it. The entry point is :func:`parse_issue`::

    parsed = parse_issue(path.read_bytes(), filename=path.name)
    for section in parsed.sections:
        for article in section.articles:
            print(section.name, article.title, article.topics, article.summary)

Two formats are read (see ``docs/import-format.md``): the magazine's own plain-text
export, and a Markdown format with YAML front matter. The encoding (UTF-8 with or without
BOM, UTF-16 with BOM, GB18030/GBK) and line ends are detected. A file that is not an issue
raises :class:`NotAnIssue`, whose message is one plain sentence for the editor; a file that
is only partly readable (truncated, say) parses, with ``warnings`` naming what is missing.
Both keep their message id and values apart (``msgid``, ``params``; every message id is
marked with ``N_``), so that pages can show them in the editor's language while ``str()``
gives the English sentence the command line prints.

The modules, in the order a file passes through them: ``encoding`` (bytes to text),
``text`` and ``markdown`` (each format's cover, sections and articles), ``lines`` and
``body`` (article bodies, read alike in both formats) and ``summary``; ``limits`` refuses
an issue too large to render and show quickly; ``errors`` holds the refusal and the warnings. What other packages use is imported from here.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal

from core.config import DEFAULTS
from core.i18n import N_
from issues.importer.body import Draft
from issues.importer.encoding import decode
from issues.importer.errors import NotAnIssue
from issues.importer.errors import ParseWarning
from issues.importer.limits import check_limits
from issues.importer.markdown import looks_like_markdown
from issues.importer.markdown import split_markdown
from issues.importer.summary import SUMMARY_CHARS
from issues.importer.summary import summarise
from issues.importer.text import split_text
from mailer.blocks import Block
from mailer.blocks import block_counts
from mailer.blocks import plain_text

__all__ = [
    "DEFAULT_SECTION_TOPICS",
    "DEFAULT_TOPICS",
    "LINE_LIMIT",
    "N_",
    "SUMMARY_CHARS",
    "NotAnIssue",
    "ParseWarning",
    "ParsedArticle",
    "ParsedIssue",
    "ParsedSection",
    "decode",
    "parse_issue",
    "summarise",
    "to_json",
]

# The topics readers choose from (policy 政策, companies 企业, data 数据) and each section's
# default topics (an empty list: the section goes to every reader; sections missing from the
# mapping do too). The configuration's documented defaults are the one source of both.
DEFAULT_TOPICS: tuple[str, ...] = tuple(DEFAULTS["TOPICS"][0])
DEFAULT_SECTION_TOPICS: Mapping[str, Sequence[str]] = types.MappingProxyType(
    {name: tuple(topics) for name, topics in DEFAULTS["SECTION_TOPICS"][0].items()}
)

# The topic an article with a data table also gets, when the topic set has it.
TABLE_TOPIC = "data"

# An issue has a couple of thousand lines (issue 361: 1,436). Far more is not one issue,
# and reading it would keep a web request busy for a minute.
LINE_LIMIT = 50_000

# Topic words that mean "every reader" in a Markdown ``topics:`` line.
_EVERYONE = frozenset({"all", "everyone", "全部", "所有"})


@dataclass
class ParsedArticle:
    """One article: its text as blocks, and what a digest needs to present it."""

    title: str
    byline: str | None
    source: str | None  # where the article comes from, brackets and label removed
    blocks: list[Block]
    topics: list[str]  # empty: the article goes to every reader
    summary: str
    span: tuple[int, int] | None = None  # 1-based first and last line in the decoded text

    @property
    def chars(self) -> int:
        """Characters of plain text, spaces and line ends not counted."""
        return sum(not char.isspace() for char in plain_text(self.blocks))


@dataclass
class ParsedSection:
    """A section in table-of-contents order; ``topics`` empty means every reader."""

    name: str
    topics: list[str]
    articles: list[ParsedArticle]


@dataclass
class ParsedIssue:
    """An issue read from a file, ready to be stored."""

    number: int | None  # 总第361期 → 361
    title: str  # the magazine's name, 天堂之芯
    period: str | None  # "2023-02"
    sections: list[ParsedSection]
    warnings: list[ParseWarning]  # for the editor; str() of each is an English sentence
    content_hash: str  # sha256 of the decoded, normalised text: the same issue twice matches
    format: Literal["text", "markdown"]

    @property
    def articles(self) -> list[ParsedArticle]:
        """Every article, in issue order."""
        return [article for section in self.sections for article in section.articles]


def parse_issue(
    data: bytes,
    *,
    filename: str | None = None,
    section_topics: Mapping[str, Sequence[str]] = DEFAULT_SECTION_TOPICS,
    topics: Sequence[str] = DEFAULT_TOPICS,
) -> ParsedIssue:
    """Read an issue file in either format; raise :class:`NotAnIssue` when it is none.

    ``filename`` only helps tell Markdown from text when there is no front matter.
    ``section_topics`` gives each section's default topics (empty: every reader);
    a ``ValueError`` says when it names a topic outside ``topics``.
    """
    _check_topics(section_topics, topics)
    text = decode(data)
    lines = text.count("\n") + 1
    if lines > LINE_LIMIT:
        raise NotAnIssue(
            N_(
                "The file has %(count)s lines, more than the %(limit)s one issue can have; "
                "import one issue at a time."
            ),
            count=lines,
            limit=LINE_LIMIT,
        )
    markdown = looks_like_markdown(text, filename)
    draft = split_markdown(text) if markdown else split_text(text)
    warnings = list(draft.warnings)
    sections = []
    for name in draft.sections:
        defaults = list(section_topics.get(name, ()))
        articles = [
            _article(found, defaults, topics, warnings)
            for found in draft.articles
            if found.section == name
        ]
        sections.append(ParsedSection(name, defaults, articles))
    check_limits([article for section in sections for article in section.articles])
    return ParsedIssue(
        number=draft.number,
        title=draft.title,
        period=draft.period,
        sections=[section for section in sections if section.articles],
        warnings=warnings,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        format="markdown" if markdown else "text",
    )


def _check_topics(section_topics: Mapping[str, Sequence[str]], topics: Sequence[str]) -> None:
    """Refuse a section mapping that names topics readers cannot choose."""
    for name, chosen in section_topics.items():
        unknown = [topic for topic in chosen if topic not in topics]
        if unknown:
            raise ValueError(f"Section {name} maps to unknown topics {unknown}; known: {topics}.")


def _article(
    draft: Draft, defaults: list[str], topics: Sequence[str], warnings: list[ParseWarning]
) -> ParsedArticle:
    """A parsed article, with its topics decided and its summary written."""
    body = draft.body
    return ParsedArticle(
        title=draft.title,
        byline=body.byline,
        source=body.source,
        blocks=body.blocks,
        topics=_article_topics(draft, defaults, topics, warnings),
        summary=summarise(body.blocks),
        span=draft.span,
    )


def _article_topics(
    draft: Draft, defaults: list[str], topics: Sequence[str], warnings: list[ParseWarning]
) -> list[str]:
    """The article's topics: the editor's choice, else its section's, plus data for tables.

    An article in a section that goes to everyone keeps going to everyone even when it
    has a table: tagging it ``data`` would narrow it to data readers, and hide it from
    everyone else who used to get the whole section.
    """
    if draft.topics is not None:
        return _chosen_topics(draft, topics, warnings)
    chosen = list(defaults)
    has_table = any(block["type"] == "table" for block in draft.body.blocks)
    if chosen and has_table and TABLE_TOPIC in topics and TABLE_TOPIC not in chosen:
        chosen.append(TABLE_TOPIC)
    return chosen


def _chosen_topics(draft: Draft, topics: Sequence[str], warnings: list[ParseWarning]) -> list[str]:
    """An editor's ``topics:`` line, unknown names dropped with a warning."""
    names = draft.topics or []
    if any(name.lower() in _EVERYONE for name in names):
        return []
    for name in names:
        if name not in topics:
            warnings.append(
                ParseWarning(
                    N_(
                        "“%(title)s” names the topic “%(topic)s”, which is not one of "
                        "%(topics)s; it was left out."
                    ),
                    {"title": draft.title, "topic": name, "topics": ", ".join(topics)},
                )
            )
    return list(dict.fromkeys(name for name in names if name in topics))


def to_json(parsed: ParsedIssue) -> dict[str, Any]:
    """The issue as the ``issue import --json`` command prints it."""
    return {
        "number": parsed.number,
        "title": parsed.title,
        "period": parsed.period,
        "sections": [
            {"name": section.name, "articles": [_article_json(a) for a in section.articles]}
            for section in parsed.sections
        ],
        "warnings": [str(warning) for warning in parsed.warnings],
    }


def _article_json(article: ParsedArticle) -> dict[str, Any]:
    return {
        "title": article.title,
        "topics": list(article.topics),
        "source": article.source,
        "summary": article.summary,
        "blocks": block_counts(article.blocks),
        "chars": article.chars,
    }
