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
from issues.importer.body import Draft
from issues.importer.body import DraftIssue
from issues.importer.body import read_body
from issues.importer.errors import ISSUE_NUMBERS
from issues.importer.errors import NotAnIssue
from issues.importer.errors import ParseWarning
from issues.importer.errors import number_out_of_range
from issues.importer.errors import shortened
from issues.importer.lines import atx_heading
from issues.importer.lines import clean
from issues.importer.lines import plain
from issues.importer.text import parse_period

_FENCE = re.compile(r"^(?:---|\.\.\.)\s*$")
_FRONT_MATTER_LINES = 60
_ARTICLE_KEY = re.compile(r"^(topics|source|byline)\s*[:：]\s*(.*)$", re.IGNORECASE)
_KNOWN_KEYS = ("number", "title", "period")


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
    return named and any(_heading(line, 2) is not None for line in lines)


def split_markdown(text: str) -> DraftIssue:
    """Read front matter, sections and articles of a Markdown issue."""
    lines = without_comments(text).split("\n")
    end = front_matter_end(lines)
    header = read_front_matter("\n".join(lines[1:end])) if end is not None else {}
    warnings: list[ParseWarning] = []
    number = _number(_scalar(header, "number", warnings), warnings)
    period = _period(_scalar(header, "period", warnings), warnings)
    title = plain(str(_scalar(header, "title", warnings) or ""))
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


def _heading(line: str, level: int) -> str | None:
    """The text of a ``#`` (section) or ``##`` (article) line, or None for other lines."""
    heading = atx_heading(line.strip())
    return heading[1] if heading and heading[0] == level else None


def without_comments(text: str) -> str:
    """``text`` with its ``<!-- … -->`` comments (notes for editors) blanked out, keeping
    their line ends so that line numbers still match the file. An unclosed ``<!--`` is kept.

    Found with ``str.find``: a lazy regular expression rescans the rest of the file from
    every ``<!--`` that has no ``-->`` after it.
    """
    parts, position = [], 0
    while (start := text.find("<!--", position)) >= 0:
        end = text.find("-->", start + 4)
        if end < 0:
            break
        parts += [text[position:start], "\n" * text.count("\n", start, end)]
        position = end + 3
    parts.append(text[position:])
    return "".join(parts)


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


def _scalar(header: dict[str, object], key: str, warnings: list[ParseWarning]) -> object:
    """The front matter's value for ``key`` when it is one value; a list or mapping is
    left out with a warning, and never turned into text: YAML aliases can make a small
    file hold a list that is gigabytes long once written out ("billion laughs")."""
    value = header.get(key)
    if isinstance(value, (list, dict, set)):
        warnings.append(
            ParseWarning(
                N_(
                    "The front matter gives “%(key)s” a list or mapping, not one value; it was left out."
                ),
                {"key": key},
            )
        )
        return None
    return value


def _number(value: object, warnings: list[ParseWarning]) -> int | None:
    """The issue number from an integer or a string holding one (``361``, ``总第361期``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, warnings)
    digits = re.search(r"(?<!\d)\d+(?!\d)", value) if isinstance(value, str) else None
    if digits:
        return _in_range(int(digits.group()), warnings)
    warnings.append(
        ParseWarning(N_("The front matter gives no issue number."))
        if value is None
        else ParseWarning(
            N_("The issue number “%(value)s” is not a whole number; it was left empty."),
            {"value": shortened(str(value))},
        )
    )
    return None


def _in_range(number: int, warnings: list[ParseWarning]) -> int | None:
    """``number`` when it can be an issue's number; else None, with a warning."""
    if number in ISSUE_NUMBERS:
        return number
    warnings.append(number_out_of_range(number))
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
                {"value": shortened(str(value))},
            )
        )
    return period


def _articles(
    lines: list[str], start: int, warnings: list[ParseWarning]
) -> tuple[list[str], list[Draft]]:
    """Sections in order, and each ``##`` article with the lines up to the next heading."""
    sections: dict[str, None] = {}  # in order of first mention; a dict to look up quickly
    heads: list[tuple[int, str, str]] = []  # line, title, section
    section = ""
    for index in range(start, len(lines)):
        if (named := _heading(lines[index], 1)) is not None:
            section = plain(clean(named))
            sections.setdefault(section)
        elif (titled := _heading(lines[index], 2)) is not None:
            heads.append((index, plain(clean(titled)), section))
            sections.setdefault(section)
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
    return next((i for i in range(start, end) if _heading(lines[i], 1) is not None), end)


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
