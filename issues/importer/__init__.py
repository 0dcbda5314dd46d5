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
"""

from __future__ import annotations

import hashlib
import re
import types
import unicodedata
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal

from core.config import DEFAULTS
from core.i18n import N_
from issues.importer.markdown import looks_like_markdown
from issues.importer.markdown import split_markdown
from issues.importer.text import CJK
from issues.importer.text import Draft
from issues.importer.text import NotAnIssue
from issues.importer.text import ParseWarning
from issues.importer.text import split_text
from mailer.blocks import Block
from mailer.blocks import block_counts
from mailer.blocks import plain_text

__all__ = [
    "DEFAULT_SECTION_TOPICS",
    "DEFAULT_TOPICS",
    "LINE_LIMIT",
    "N_",
    "SUMMARY_LIMIT",
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

# Summaries stop at a sentence end, at most this many characters (Chinese characters).
SUMMARY_LIMIT = 120

# Topic words that mean "every reader" in a Markdown ``topics:`` line.
_EVERYONE = frozenset({"all", "everyone", "全部", "所有"})

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# Whole sentences per kind of file, so that each translates as one sentence.
_SAVE_AS_TEXT = N_(
    "The file is not text (it holds binary data); save the issue as plain text or Markdown "
    "and import that."
)
_PDF = N_(
    "The file is a PDF document, not text; save the issue as plain text or Markdown and import that."
)
_OFFICE = N_(
    "The file is a Word, Excel or ZIP file, not text; save the issue as plain text or Markdown "
    "and import that."
)
_OLD_OFFICE = N_(
    "The file is an old Word or Excel file, not text; save the issue as plain text or Markdown "
    "and import that."
)
_RTF = N_(
    "The file is an RTF document, not text; save the issue as plain text or Markdown and "
    "import that."
)
_IMAGE = N_(
    "The file is an image, not text; save the issue as plain text or Markdown and import that."
)
_BINARY_KINDS = (
    (b"%PDF", _PDF),
    (b"PK\x03\x04", _OFFICE),
    (b"\xd0\xcf\x11\xe0", _OLD_OFFICE),
    (b"{\\rtf", _RTF),
    (b"\x89PNG", _IMAGE),
    (b"\xff\xd8\xff", _IMAGE),
    (b"GIF8", _IMAGE),
)
_OTHER_SCRIPTS = re.compile(r"[\u0100-\u02ff\u0370-\u07ff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SENTENCE_END = re.compile(r"[。！？!?]+[”’」』\"')）]*|\.(?=\s|$)[”’\"')]*")
_CLAUSE_END = re.compile(r"[，；、,;：:]")


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


def decode(data: bytes) -> str:
    """The file's text: encoding detected, line ends made ``\\n``, Unicode in NFC form.

    UTF-8 (with or without BOM), UTF-16/32 with BOM and GB18030 (a superset of GBK and
    GB2312) are read; anything else, and binary files, raise :class:`NotAnIssue`.
    """
    if not data.strip():
        raise NotAnIssue(N_("The file is empty."))
    text = _decoded(data)
    if len(_CONTROL.findall(text)) > len(text) // 100:
        raise NotAnIssue(_SAVE_AS_TEXT)
    # Form feeds are page breaks; other stray control characters are noise.
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n"))
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise NotAnIssue(N_("The file is empty."))
    return text


def _decoded(data: bytes) -> str:
    """Bytes to text by BOM, else as UTF-8, else as GB18030; binary files are refused."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as error:
                raise NotAnIssue(
                    N_(
                        "The file's characters cannot be read as %(encoding)s text; save it "
                        "again as UTF-8 and import that."
                    ),
                    encoding=encoding,
                ) from error
    for magic, refusal in _BINARY_KINDS:
        if data.startswith(magic):
            raise NotAnIssue(refusal)
    if b"\x00" in data:
        raise NotAnIssue(_SAVE_AS_TEXT)
    utf8, gb = _attempt(data, "utf-8"), None
    if utf8 is None or _misread_gbk(utf8):
        gb = _attempt(data, "gb18030")
    if gb is not None and (utf8 is None or CJK.search(gb)):
        return gb
    if utf8 is not None:
        return utf8
    raise NotAnIssue(
        N_(
            "The file's characters cannot be read as UTF-8 or GB18030 (GBK) text; save it "
            "again as UTF-8 and import that."
        )
    )


def _attempt(data: bytes, encoding: str) -> str | None:
    """The bytes decoded, or None when they are not in this encoding."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _misread_gbk(text: str) -> bool:
    """Whether valid UTF-8 looks like GBK read wrongly: no Chinese, but letters of other
    scripts (``芯片`` in GBK is the UTF-8 for ``оƬ``), as happens with short texts."""
    return not CJK.search(text) and bool(_OTHER_SCRIPTS.search(text))


def summarise(blocks: Sequence[Block]) -> str:
    """The first sentence(s) of the article, cut at a sentence end, at most 120 characters.

    The first paragraph of some length is used (Chinese before English), and the summary
    is the longest start of it that ends a sentence and fits. When even the first sentence
    is too long, it is cut at the last clause mark that fits and ends in ``…``; a paragraph
    without any sentence end counts as one sentence.
    """
    paragraphs = [b["text"] for b in blocks if b["type"] == "paragraph" and "lang" not in b]
    paragraphs = paragraphs or [b["text"] for b in blocks if b["type"] == "paragraph"]
    text = next((p for p in paragraphs if len(p) >= 20), paragraphs[0] if paragraphs else "")
    text = text.strip()
    ends = _sentence_ends(text) or [len(text)]
    fitting = [end for end in ends if len(text[:end].rstrip()) <= SUMMARY_LIMIT]
    return text[: fitting[-1]].rstrip() if fitting else _clipped(text[: ends[0]])


def _sentence_ends(text: str) -> list[int]:
    """Where sentences end, up to the first end past the limit: measuring every start of
    a long paragraph would take as long as the paragraph squared."""
    ends = []
    for match in _SENTENCE_END.finditer(text):
        ends.append(match.end())
        if match.end() > SUMMARY_LIMIT:
            break
    return ends


def _clipped(sentence: str) -> str:
    """A sentence too long for a summary, cut at a clause mark if one falls late enough."""
    room = sentence[: SUMMARY_LIMIT - 1]
    clauses = [match.start() for match in _CLAUSE_END.finditer(room)]
    cut = clauses[-1] if clauses and clauses[-1] >= SUMMARY_LIMIT // 2 else len(room)
    return room[:cut].rstrip() + "…"


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
