"""Reading the project's Markdown issue format (documented in ``docs/import-format.md``).

YAML front matter gives number, title and period; ``# name`` starts a section, ``## title``
an article, and optional ``topics:``, ``source:`` and ``byline:`` lines may follow the
article's ``##`` line. Article bodies are read by the same rules as the text export, with
Markdown's own additions (``###`` headings, ``| a | b |`` tables, soft-wrapped paragraphs).
"""

from __future__ import annotations

import datetime
import re

import yaml

from core.i18n import N_
from mailer.importer_text import Draft
from mailer.importer_text import DraftIssue
from mailer.importer_text import NotAnIssue
from mailer.importer_text import ParseWarning
from mailer.importer_text import clean
from mailer.importer_text import parse_period
from mailer.importer_text import plain
from mailer.importer_text import read_body

_FENCE = re.compile(r"^(?:---|\.\.\.)\s*$")
_FRONT_MATTER_LINES = 60
_SECTION = re.compile(r"^#\s+(.+?)\s*#*$")
_ARTICLE = re.compile(r"^##\s+(.+?)\s*#*$")
_ARTICLE_KEY = re.compile(r"^(topics|source|byline)\s*[:：]\s*(.*)$", re.IGNORECASE)
_KNOWN_KEYS = ("number", "title", "period")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def front_matter_end(lines: list[str]) -> int | None:
    """The index of the line closing the front matter, or None when there is none."""
    if not lines or lines[0].strip() != "---":
        return None
    limit = min(len(lines), _FRONT_MATTER_LINES)
    return next((i for i in range(1, limit) if _FENCE.match(lines[i])), None)


def looks_like_markdown(text: str, filename: str | None) -> bool:
    """Front matter makes a file Markdown; so does a ``.md`` name with ``##`` articles."""
    lines = text.split("\n")
    if front_matter_end(lines) is not None:
        return True
    named = (filename or "").lower().endswith((".md", ".markdown"))
    return named and any(_ARTICLE.match(line) for line in lines)


def split_markdown(text: str) -> DraftIssue:
    """Read front matter, sections and articles of a Markdown issue."""
    # Comments are notes for editors; blank them out but keep the line numbering.
    lines = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text).split("\n")
    end = front_matter_end(lines)
    header = read_front_matter("\n".join(lines[1:end])) if end is not None else {}
    warnings: list[ParseWarning] = []
    number = _number(header.get("number"), warnings)
    period = _period(header.get("period"), warnings)
    title = plain(str(header.get("title") or ""))
    if not title:
        warnings.append(ParseWarning(N_("The front matter gives no title (the magazine's name).")))
    warnings += [
        ParseWarning(
            N_(
                "The front matter key “%(key)s” is not used; the keys are number, title and period."
            ),
            {"key": key},
        )
        for key in header
        if key not in _KNOWN_KEYS
    ]
    start = end + 1 if end is not None else 0
    sections, articles = _articles(lines, start, warnings)
    if not articles:
        raise NotAnIssue(N_("The Markdown file has no articles: each one starts with “## title”."))
    return DraftIssue(number, title, period, sections, articles, warnings)


def read_front_matter(source: str) -> dict[str, object]:
    """The front matter as a mapping with string keys, or a refusal saying what is wrong."""
    try:
        loaded = yaml.safe_load(source)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 2 if error.problem_mark else 1
        raise NotAnIssue(
            N_("The front matter is not valid YAML (near line %(line)s)."), line=line
        ) from error
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        # PyYAML raises ValueError for impossible dates such as 2023-13-01.
        raise NotAnIssue(N_("The front matter is not valid YAML.")) from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise NotAnIssue(N_("The front matter must be “key: value” lines (number, title, period)."))
    return {str(key): value for key, value in loaded.items()}


def _number(value: object, warnings: list[ParseWarning]) -> int | None:
    """The issue number from an integer or a string holding one (``361``, ``总第361期``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    digits = re.search(r"\d{1,9}", value) if isinstance(value, str) else None
    if digits:
        return int(digits.group())
    warnings.append(
        ParseWarning(N_("The front matter gives no issue number."))
        if value is None
        else ParseWarning(
            N_("The issue number “%(value)s” is not a whole number; it was left empty."),
            {"value": str(value)},
        )
    )
    return None


def _period(value: object, warnings: list[ParseWarning]) -> str | None:
    """``"2023-02"`` from ``2023-02``, ``2023/02``, ``2023年2月`` or a YAML date."""
    if isinstance(value, datetime.date):
        return f"{value.year:04d}-{value.month:02d}"
    period = parse_period(f"{value}月") if isinstance(value, str) else None
    if period is None:
        warnings.append(
            ParseWarning(N_("The front matter gives no period (such as 2023-02)."))
            if value is None
            else ParseWarning(
                N_("The period “%(value)s” is not a year and month such as 2023-02."),
                {"value": str(value)},
            )
        )
    return period


def _articles(
    lines: list[str], start: int, warnings: list[ParseWarning]
) -> tuple[list[str], list[Draft]]:
    """Sections in order, and each ``##`` article with the lines up to the next heading."""
    sections: list[str] = []
    heads: list[tuple[int, str, str]] = []  # line, title, section
    section = ""
    for index in range(start, len(lines)):
        text = lines[index].strip()
        if named := _SECTION.match(text):
            section = plain(clean(named.group(1)))
            if section not in sections:
                sections.append(section)
        elif titled := _ARTICLE.match(text):
            heads.append((index, plain(clean(titled.group(1))), section))
            if section not in sections:
                sections.append(section)
    drafts = []
    for position, (line, title, section) in enumerate(heads):
        end = heads[position + 1][0] if position + 1 < len(heads) else len(lines)
        body_end = _section_line(lines, line + 1, end)
        drafts.append(_article(lines, line, body_end, title, section, warnings))
    used = {draft.section for draft in drafts}
    warnings += [
        ParseWarning(N_("The section “%(name)s” has no articles."), {"name": name})
        for name in sections
        if name not in used
    ]
    return [name for name in sections if name in used], drafts


def _section_line(lines: list[str], start: int, end: int) -> int:
    """Where an article's lines stop: at the next ``#`` section line, if one comes first."""
    return next((i for i in range(start, end) if _SECTION.match(lines[i].strip())), end)


def _article(
    lines: list[str],
    line: int,
    end: int,
    title: str,
    section: str,
    warnings: list[ParseWarning],
) -> Draft:
    """One article: its ``topics:``/``source:``/``byline:`` lines, then its body."""
    keys: dict[str, str] = {}
    index = line + 1
    while index < end and (not lines[index].strip() or _ARTICLE_KEY.match(lines[index].strip())):
        if key := _ARTICLE_KEY.match(lines[index].strip()):
            keys[key.group(1).lower()] = key.group(2).strip()
        index += 1
    body = read_body(lines[index:end], title, markdown=True)
    body.source = keys.get("source") or body.source
    body.byline = keys.get("byline") or body.byline
    last = index + body.last if body.last >= 0 else line
    topics = _topic_names(keys["topics"]) if "topics" in keys else None
    if not title:
        warnings.append(
            ParseWarning(N_("The article on line %(line)s has an empty title."), {"line": line + 1})
        )
    return Draft(title, section, body, (line + 1, last + 1), topics)


def _topic_names(value: str) -> list[str]:
    """Topic names from ``policy, data``, ``[policy, data]`` or ``policy 、data``."""
    return [name for name in re.split(r"[\s,，、;；\[\]]+", value) if name]
