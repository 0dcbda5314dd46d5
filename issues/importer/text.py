"""The magazine's plain-text export: cover, table of contents (``目录``), then the articles.

The export (described in ``docs/import-format.md``) has each article start with its title
on a line of its own, listed in the table of contents under its section. Paragraphs are
single lines separated by blank lines; table rows are tab-separated lines. Nothing here
knows about topics, databases or Flask: text in, drafts out.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from core.i18n import N_
from issues.importer.body import Draft
from issues.importer.body import DraftIssue
from issues.importer.body import read_body
from issues.importer.errors import ISSUE_NUMBERS
from issues.importer.errors import NotAnIssue
from issues.importer.errors import ParseWarning
from issues.importer.errors import number_out_of_range
from issues.importer.lines import CJK
from issues.importer.lines import CLAUSE_MARKS
from issues.importer.lines import clean
from issues.importer.lines import plain
from issues.importer.lines import title_key

_TOC_HEADING = re.compile(r"^目\s*录(?:\s*[|｜/]?\s*contents)?$|^contents$", re.IGNORECASE)
_TOC_MARKER = re.compile(r"^[-*•·]\s+")
_TOC_PAGE = re.compile(r"(?:\s+[-–—]+\s*|\s*(?:\.{2,}|…+|·{2,})\s*|\t+)(\d{1,3})$")
_TOC_ENTRY_MAX = 300  # No title is longer; longer lines are text, and never searched.
_TOC_SECTION = re.compile(r"^(?:[◆◇■□●○★☆▶►▪]\s*(\S.*)|【(.+)】)$")
_ISSUE_NUMBER = re.compile(r"总\s*第\s*(\d{1,5})\s*期")
_COVER_PERIOD = re.compile(r"(\d{4})\s*[/.\-年]\s*(\d{1,2})(?!\d)")
_ANY_PERIOD = re.compile(r"(\d{4})\s*[/.\-年]\s*(\d{1,2})\s*月(?:刊|号)?")
_MAGAZINE_NAME = re.compile(r"《([^《》]{2,20})》\s*(?:杂志|月刊|期刊)")


@dataclass
class TocEntry:
    """A table-of-contents line: an article's title and the section it is listed under."""

    title: str
    section: str


@dataclass
class Toc:
    """Where the table of contents is (0-based line indexes) and what it lists."""

    start: int
    end: int  # first line after it: the body search starts here
    sections: list[str]
    entries: list[TocEntry]


def split_text(text: str) -> DraftIssue:
    """Find the cover, the table of contents and every listed article in a text export."""
    lines = text.split("\n")
    toc = find_toc(lines)
    cover = lines[: toc.start]
    number, period, title, warnings = read_cover(cover)
    found = locate(lines, toc)
    located = {id(entry) for entry, _, _ in found}
    warnings += [_not_found(entry) for entry in toc.entries if id(entry) not in located]
    if not found:
        raise NotAnIssue(
            N_(
                "None of the %(count)s articles listed in the table of contents was found "
                "after it, so the file holds no article text."
            ),
            count=len(toc.entries),
        )
    articles = _read_articles(lines, found, cover)
    return DraftIssue(number, title, period, toc.sections, articles, warnings)


def _not_found(entry: TocEntry) -> ParseWarning:
    if not entry.section:
        return ParseWarning(
            N_("“%(title)s”, listed in the table of contents, was not found in the text."),
            {"title": entry.title},
        )
    return ParseWarning(
        N_(
            "“%(title)s”, listed in the table of contents under %(section)s, was not found "
            "in the text."
        ),
        {"title": entry.title, "section": entry.section},
    )


def find_toc(lines: list[str]) -> Toc:
    """The first ``目录`` line followed by entries, and what it lists."""
    headings = [i for i, line in enumerate(lines) if _TOC_HEADING.match(clean(line))]
    for start in headings:
        toc = _read_toc(lines, start)
        if toc.entries:
            return toc
    if headings:
        raise NotAnIssue(
            N_(
                "The table of contents (目录) lists no articles; each entry should be a line "
                "such as “- title - page”."
            )
        )
    raise NotAnIssue(
        N_(
            "No table of contents (a line 目录 followed by “- title - page” lines) was found, "
            "so this does not look like an issue of the magazine."
        )
    )


def _read_toc(lines: list[str], start: int) -> Toc:
    """Section and entry lines after a ``目录`` line, up to the first line of another kind."""
    toc = Toc(start=start, end=start + 1, sections=[], entries=[])
    section = ""
    for index in range(start + 1, len(lines)):
        text = clean(lines[index])
        if not text or _TOC_HEADING.match(text):
            continue
        entry = _toc_entry(text)
        named = _TOC_SECTION.match(text)
        if entry:
            if section not in toc.sections:
                toc.sections.append(section)
            toc.entries.append(TocEntry(entry, section))
        elif named or _introduces_entries(lines, index, text):
            section = plain(named.group(1) or named.group(2)) if named else plain(text)
        else:
            break
        toc.end = index + 1
    return toc


def _toc_entry(text: str) -> str | None:
    """An entry's title, or None when the line is not an entry (a dash, or a page number)."""
    if len(text) > _TOC_ENTRY_MAX:
        return None
    marker = _TOC_MARKER.match(text)
    page = _TOC_PAGE.search(text)
    if not marker and not page:
        return None
    title = text[marker.end() if marker else 0 : page.start() if page else len(text)]
    return plain(title) or None


def _introduces_entries(lines: list[str], index: int, text: str) -> bool:
    """A short unmarked line directly followed by an entry names a section."""
    if len(text) > 16 or CLAUSE_MARKS.search(text):
        return False
    rest = (clean(lines[i]) for i in range(index + 1, len(lines)))  # no copy of the list
    following = next((line for line in rest if line), "")
    return bool(following and _toc_entry(following))


def read_cover(cover: list[str]) -> tuple[int | None, str | None, str, list[ParseWarning]]:
    """Issue number (``总第361期``), period (``2023/02月刊`` → ``2023-02``) and magazine name."""
    texts = [clean(line) for line in cover]
    line = next((i for i, text in enumerate(texts) if _ISSUE_NUMBER.search(text)), None)
    number = period = None
    warnings = []
    if line is not None and (cover_number := _ISSUE_NUMBER.search(texts[line])):
        number = int(cover_number.group(1))
        period = parse_period(texts[line], _COVER_PERIOD)
        if number not in ISSUE_NUMBERS:
            warnings.append(number_out_of_range(number))
            number = None
    period = period or next(filter(None, (parse_period(t, _ANY_PERIOD) for t in texts)), None)
    title = _magazine_name(texts, line)
    if number is None and not warnings:
        warnings.append(
            ParseWarning(N_("No issue number (such as 总第361期) was found on the cover."))
        )
    if period is None:
        warnings.append(ParseWarning(N_("No period (such as 2023/02月刊) was found on the cover.")))
    if not title:
        warnings.append(ParseWarning(N_("No magazine name was found on the cover.")))
    return number, period, title, warnings


def parse_period(text: str, pattern: re.Pattern[str] = _ANY_PERIOD) -> str | None:
    """``"2023-02"`` from the first year and month the pattern finds, if the month is real."""
    for match in pattern.finditer(text):
        year, month = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12 and 1900 <= year <= 2999:
            return f"{year:04d}-{month:02d}"
    return None


def _magazine_name(texts: list[str], cover_line: int | None) -> str:
    """The first short line after the cover line, else a ``《name》杂志`` mention."""
    after = texts[cover_line + 1 :] if cover_line is not None else texts
    for text in after:
        if text and len(text) <= 20 and CJK.search(text):
            return plain(text)
        if text:
            break
    named = next(filter(None, (_MAGAZINE_NAME.search(text) for text in texts)), None)
    return named.group(1) if named else ""


def locate(lines: list[str], toc: Toc) -> list[tuple[TocEntry, int, int]]:
    """Each entry's title lines in the body (first, last), searched in order after the TOC.

    A title matches a whole line, or two lines when it was wrapped; an entry that is not
    found is skipped, and the search for the next one starts where it stood.
    """
    places = _title_places([title_key(clean(line)) for line in lines], toc.end)
    found: list[tuple[TocEntry, int, int]] = []
    cursor = toc.end
    for entry in toc.entries:
        place = _find_title(places, title_key(entry.title), cursor)
        if place:
            found.append((entry, *place))
            cursor = place[1] + 1
    return found


def _title_places(keys: list[str], start: int) -> dict[str, list[tuple[int, int]]]:
    """Every key a title could have from ``start`` on, with the lines it spans, in order.

    A line's own key spans that line; a line joined to the next non-empty line among the
    three after it spans both (a title wrapped over two lines). Looking entries up here
    keeps a long file with many unmatched entries from being searched once per entry.
    """
    places: dict[str, list[tuple[int, int]]] = {}
    for index in range(start, len(keys)):
        line = keys[index]
        if not line:
            continue
        places.setdefault(line, []).append((index, index))
        after = next((i for i in range(index + 1, min(index + 4, len(keys))) if keys[i]), None)
        if after is not None:
            places.setdefault(line + keys[after], []).append((index, after))
    return places


def _find_title(
    places: dict[str, list[tuple[int, int]]], key: str, start: int
) -> tuple[int, int] | None:
    """The first line (or wrapped pair of lines) from ``start`` whose key is ``key``."""
    spans = places.get(key, []) if key else []
    # Spans are in line order, a line's own span before its wrapped one.
    at = bisect.bisect_left(spans, (start, -1))
    return spans[at] if at < len(spans) else None


def _read_articles(
    lines: list[str], found: list[tuple[TocEntry, int, int]], cover: list[str]
) -> list[Draft]:
    """Each article runs from its title to the next title; the last one stops at the back cover."""
    drafts: list[Draft] = []
    handoff: dict[str, str] = {}
    for position, (entry, first, title_end) in enumerate(found):
        end = found[position + 1][1] if position + 1 < len(found) else len(lines)
        body_lines = lines[title_end + 1 : end]
        if position + 1 == len(found):
            body_lines = _without_back_cover(body_lines, cover)
        body = read_body(body_lines, entry.title, markdown=False, preamble=handoff)
        handoff = body.handoff
        last = title_end + 1 + body.last if body.last >= 0 else title_end
        drafts.append(Draft(entry.title, entry.section, body, (first + 1, last + 1)))
    return drafts


def _without_back_cover(lines: list[str], cover: list[str]) -> list[str]:
    """Lines up to the back cover, which repeats lines of the front cover (masthead, imprint)."""
    repeated = {text for text in map(clean, cover) if len(text) >= 6}
    seen_content = False
    for index, line in enumerate(lines):
        text = clean(line)
        if seen_content and text in repeated:
            return lines[:index]
        seen_content = seen_content or bool(text)
    return lines
