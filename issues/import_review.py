"""What an editor checks in an import preview beyond the articles themselves: the articles
without a source, the parts of the file no article took (cover, table of contents, notices,
back cover), and, when the file replaces a draft, the articles it will change.

Plain functions over a parsed issue, its decoded text and the stored draft; nothing here
touches a request or commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from issues.importer import ParsedIssue
from issues.importer.lines import clean
from issues.models import Issue

# How much of a skipped part's first line the preview shows.
SAMPLE_CHARS = 60

Where = Literal["before", "between", "after"]


@dataclass(frozen=True)
class Skipped:
    """A run of lines that is in no article: ``where`` it stands, its lines and first words."""

    where: Where
    first: int
    last: int
    sample: str


@dataclass(frozen=True)
class Change:
    """One article of the stored draft that importing the new file changes."""

    number: int
    title: str
    fields: tuple[str, ...]  # "title", "summary", "topics", "text"; or "removed" / "added"


def unsourced(parsed: ParsedIssue) -> list[tuple[int, str]]:
    """Number and title of each article the file gives no source for."""
    return [
        (number, article.title)
        for number, article in enumerate(parsed.articles, start=1)
        if not article.source
    ]


def skipped(parsed: ParsedIssue, text: str) -> list[Skipped]:
    """The runs of lines outside every article, section headings and blank lines not counted."""
    lines = text.split("\n")
    spans = sorted(article.span for article in parsed.articles if article.span is not None)
    if not spans:
        return []
    headings = {clean(section.name) for section in parsed.sections}
    gaps: list[tuple[int, int, Where]] = [(1, spans[0][0] - 1, "before")]
    gaps += [(a[1] + 1, b[0] - 1, "between") for a, b in pairwise(spans)]
    gaps.append((spans[-1][1] + 1, len(lines), "after"))
    found = []
    for first, last, where in gaps:
        kept = [
            (number, clean(lines[number - 1]))
            for number in range(first, last + 1)
            if clean(lines[number - 1]) and clean(lines[number - 1]) not in headings
        ]
        if kept:
            sample = kept[0][1][:SAMPLE_CHARS]
            found.append(Skipped(where, kept[0][0], kept[-1][0], sample))
    return found


def lost_changes(existing: Issue, parsed: ParsedIssue) -> list[Change]:
    """The draft's articles that the new file changes, by their number in the issue."""
    stored = {
        article.number: article for section in existing.sections for article in section.articles
    }
    changes = []
    for number, new in enumerate(parsed.articles, start=1):
        old = stored.pop(number, None)
        if old is None:
            changes.append(Change(number, new.title, ("added",)))
            continue
        fields = tuple(
            name
            for name, differs in (
                ("title", old.title != new.title),
                ("summary", old.summary != new.summary),
                ("topics", set(old.topics) != set(new.topics)),
                ("text", old.blocks != list(new.blocks)),
            )
            if differs
        )
        if fields:
            changes.append(Change(number, old.title, fields))
    changes += [Change(number, old.title, ("removed",)) for number, old in sorted(stored.items())]
    return changes
