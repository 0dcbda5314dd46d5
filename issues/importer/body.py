"""Article bodies in both formats: classified lines to blocks, byline and source.

Paragraphs cut by a page break are joined again, runs of table rows become tables (with
the short line above as caption), numbered headings get dense levels, and the author and
source lines are taken out of the text. A :class:`Draft` carries a body, with its title and
section, from either format's splitter to ``parse_issue``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from issues.importer.errors import ParseWarning
from issues.importer.lines import CJK
from issues.importer.lines import CLAUSE_MARKS
from issues.importer.lines import HEADING_MAX
from issues.importer.lines import Line
from issues.importer.lines import classify_line
from issues.importer.lines import is_english
from issues.importer.lines import meta_pairs
from issues.importer.lines import plain
from issues.importer.lines import title_key
from mailer.blocks import Block
from mailer.blocks import Caption
from mailer.blocks import Heading
from mailer.blocks import Paragraph
from mailer.blocks import Table

_AUTHOR_LABEL = re.compile(r"^(?:作者|文|撰文|记者|撰稿|供稿)\s*[:：/|｜]\s*(\S.*)$")
_NAMES = re.compile(rf"^{CJK.pattern}{{2,4}}(?:[\s、,，]+{CJK.pattern}{{2,4}})*$")
_ORGANISATION = re.compile(r"大学|学院|研究院|研究所|实验室|协会|学会|公司|集团|委员会|中心")

# A line that ends with one of these has finished its sentence; anything else may go on.
_TERMINAL = tuple("。！？!?；;：:…”’\"'」』）)】")
_SENTENCE_MARKS = re.compile(r"[。！？]")


@dataclass
class Body:
    """What an article's lines hold once read."""

    blocks: list[Block]
    byline: str | None
    source: str | None
    last: int  # index of the last line that belongs to the article
    handoff: dict[str, str]  # portal metadata after the article: it belongs to the next one


@dataclass
class Draft:
    """An article found in the file, before topics and summary are decided."""

    title: str
    section: str
    body: Body
    span: tuple[int, int]  # 1-based first and last line in the decoded text
    topics: list[str] | None = None  # chosen by the editor (Markdown ``topics:``)


@dataclass
class DraftIssue:
    """An issue found in the file, in either format."""

    number: int | None
    title: str
    period: str | None
    sections: list[str]
    articles: list[Draft]
    warnings: list[ParseWarning]


def read_body(
    lines: Sequence[str], title: str, *, markdown: bool, preamble: dict[str, str] | None = None
) -> Body:
    """Read an article's lines (after its title) into blocks, byline and source.

    ``preamble`` is portal metadata that stood before the title (``发文机关``, ``来源``);
    it fills in the byline and source when the body has none of its own.
    """
    key = title_key(title)
    items = [classify_line(raw, number, key, markdown=markdown) for number, raw in enumerate(lines)]
    items = [line for line in items if line.kind != "rule"]
    items, handoff = _split_tail(_settle_rows(items, key, markdown=markdown))
    meta = dict(preamble or {})
    for line in items:
        if line.kind == "meta":
            meta.update(meta_pairs(line.text))
    byline, items = _take_byline(items)
    blocks = _blocks(items, markdown=markdown)
    last = max((line.number for line in items if line.kind != "blank"), default=-1)
    return Body(
        blocks=blocks,
        byline=byline or meta.get("发文机关") or None,
        source=_source(items, meta),
        last=last,
        handoff=handoff,
    )


def _settle_rows(items: list[Line], key: str, *, markdown: bool) -> list[Line]:
    """A tab in a line with no row beside it is not a table: read that line again."""
    settled = list(items)
    for index, line in enumerate(items):
        beside = items[index - 1 : index] + items[index + 1 : index + 2]
        if line.kind == "row" and not any(other.kind == "row" for other in beside):
            text = " ".join(cell for cell in line.cells if cell)
            settled[index] = classify_line(text, line.number, key, markdown=markdown)
    return settled


def _split_tail(items: list[Line]) -> tuple[list[Line], dict[str, str]]:
    """Cut off the residue after an article; the metadata in it introduces the next one."""
    end = len(items)
    while end and items[end - 1].kind in ("blank", "residue", "meta"):
        end -= 1
    handoff: dict[str, str] = {}
    for line in items[end:]:
        if line.kind == "meta":
            handoff.update(meta_pairs(line.text))
    return items[:end], handoff


def _take_byline(items: list[Line]) -> tuple[str | None, list[Line]]:
    """Take author lines from right after the title: names, then perhaps an affiliation."""
    content = [i for i, line in enumerate(items) if line.kind not in ("blank", "residue")][:2]
    parts = _byline_parts([items[i] for i in content])
    taken = set(content[: len(parts)])
    rest = [line for i, line in enumerate(items) if i not in taken]
    return ("，".join(parts) or None), rest


def _byline_parts(lines: list[Line]) -> list[str]:
    """The byline texts among the first two lines of a body.

    An unlabelled single short word (``编者按``, ``张伟``) is only a byline when an
    affiliation line follows it; two or more names, or ``作者：…``, are one on their own.
    """
    first = _byline_text(lines[0], first=True) if lines else None
    if first is None:
        return []
    names = bool(_NAMES.match(first))
    second = _byline_text(lines[1], first=False) if names and len(lines) > 1 else None
    if second:
        return [first, second]
    labelled = bool(_AUTHOR_LABEL.match(lines[0].text))
    alone = names and not labelled and len(re.split(r"[\s、,，]+", first)) < 2
    return [] if alone else [first]


def _byline_text(line: Line, *, first: bool) -> str | None:
    """The author text of a line: ``作者：…``, names (``骆军委 李树深``) or an affiliation."""
    if line.kind != "paragraph" or line.source:
        return None
    labelled = _AUTHOR_LABEL.match(line.text)
    if labelled and first:
        return plain(labelled.group(1))
    bare = plain(line.text)
    if len(bare) > HEADING_MAX or CLAUSE_MARKS.search(bare):
        return None
    return bare if (first and _NAMES.match(bare)) or _ORGANISATION.search(bare) else None


def _source(items: list[Line], meta: dict[str, str]) -> str | None:
    """The article's sources, its own ``来源`` first, then data sources, each once."""
    own = [line.text for line in items if line.kind == "source"]
    own += [line.source for line in items if line.source]
    if not own and meta.get("来源"):
        own = [meta["来源"]]
    data = [line.text for line in items if line.kind == "data_source"]
    names = list(dict.fromkeys(name for name in own + data if name))
    return "；".join(names) or None


def _blocks(items: list[Line], *, markdown: bool) -> list[Block]:
    """Turn classified lines into blocks: tables, captions, joined paragraphs, headings."""
    pieces = _captions_before_tables(_group_rows(items, markdown=markdown))
    blocks: list[Block] = []
    ranks: list[int] = []
    previous: Line | Table | None = None
    text = Joined("")  # the text of ``previous``, grown as lines join it
    gap = False
    for piece in pieces:
        if isinstance(piece, Line):
            if piece.kind == "blank":
                gap = True
                continue
            if isinstance(previous, Line) and _joins(previous, text, piece, gap, markdown):
                text.add(piece.text)
                gap = False
                continue
        _emit(blocks, ranks, previous, text)
        previous, gap = piece, False
        text = Joined(piece.text if isinstance(piece, Line) else "")
    _emit(blocks, ranks, previous, text)
    return _dense_levels(blocks, ranks)


class Joined:
    """A paragraph's text as lines join it, with what ``continues`` asks of it kept up to date.

    Lines are kept in a list and made one string once: adding each line to a growing
    string, and searching all of it again before each join, takes minutes on one long
    paragraph.
    """

    def __init__(self, first: str) -> None:
        self.pieces = [first]
        self.length = len(first)
        self.chinese = bool(CJK.search(first))
        self.marked = bool(_SENTENCE_MARKS.search(first))

    def add(self, line: str) -> None:
        """Join a line on: a space between Latin words, none next to Chinese."""
        latin = self.pieces[-1][-1:].isascii() and line[:1].isascii()
        piece = f" {line}" if latin else line
        self.pieces.append(piece)
        self.length += len(piece)
        self.chinese = self.chinese or bool(CJK.search(line))
        self.marked = self.marked or bool(_SENTENCE_MARKS.search(line))

    def tail(self) -> str:
        """The end of the text without trailing ``*``: the last piece that has more."""
        return next((p.rstrip("*") for p in reversed(self.pieces) if p.rstrip("*")), "")

    def __str__(self) -> str:
        return "".join(self.pieces)


def _group_rows(items: list[Line], *, markdown: bool) -> list[Line | Table]:
    """Runs of consecutive table rows become tables; other lines stay as they are.

    Lines that make no block (sources, residue) stay too: they keep the paragraphs on
    either side of them apart.
    """
    pieces: list[Line | Table] = []
    run: list[Line] = []
    for line in [*items, Line("blank", -1)]:
        if line.kind == "row":
            run.append(line)
            continue
        if run:
            pieces.extend(_table_or_lines(run, markdown=markdown))
            run = []
        if line.number >= 0:
            pieces.append(line)
    return pieces


def _table_or_lines(run: list[Line], *, markdown: bool) -> list[Line | Table]:
    """A table when some row fills two cells, else each row read again as a line.

    Lines indented with a tab fill one cell each: they are paragraphs, not a table.
    """
    rows = [_trim(line.cells) for line in run]
    width = max(len(row) for row in rows)
    if any(sum(1 for cell in row if cell) >= 2 for row in rows):
        padded = [row + [""] * (width - len(row)) for row in rows]
        return [Table(type="table", header=padded[0], rows=padded[1:])]
    return [
        classify_line(" ".join(row), line.number, "", markdown=markdown)
        for line, row in zip(run, rows, strict=True)
    ]


def _trim(cells: list[str]) -> list[str]:
    """Cells without the empty ones a row ends with; leading empty cells keep positions."""
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


def _captions_before_tables(pieces: list[Line | Table]) -> list[Line | Table]:
    """A short title line right above a table (blank lines between allowed) is its caption."""
    for index, piece in enumerate(pieces):
        if not isinstance(piece, dict):
            continue
        before = index - 1
        while before >= 0 and isinstance(pieces[before], Line) and _is_blank(pieces[before]):
            before -= 1
        candidate = pieces[before] if before >= 0 else None
        if isinstance(candidate, Line) and _is_table_title(candidate):
            candidate.kind, candidate.text = "caption", plain(candidate.text)
    return pieces


def _is_blank(piece: Line | Table) -> bool:
    return isinstance(piece, Line) and piece.kind == "blank"


def _is_table_title(line: Line) -> bool:
    """A paragraph line short enough, and without clause marks, to be a table's title."""
    return (
        line.kind == "paragraph"
        and not line.source
        and len(line.text) <= 50
        and not re.search(r"[。，；,;]", line.text)
    )


def _joins(previous: Line, text: Joined, line: Line, gap: bool, markdown: bool) -> bool:
    """Whether ``line`` continues the paragraph ``previous`` (whose text so far is ``text``).

    In Markdown, lines without a blank between belong to one paragraph. In the text
    export every line is a paragraph, except that a page break cuts a sentence: the line
    before the break stops mid-sentence and the rest follows after blank lines.
    """
    if previous.kind != "paragraph" or line.kind != "paragraph" or previous.source or line.item:
        return False
    if markdown:
        return not gap
    return gap and continues(text, line.text)


def continues(previous: Joined, following: str) -> bool:
    """Whether ``following`` carries on a sentence that a page break cut after ``previous``."""
    tail, head = previous.tail(), following.lstrip("*")
    if not tail or not head or tail.endswith(_TERMINAL):
        return False
    if not previous.chinese:
        return head[0].islower()  # English resumes mid-sentence in lower case
    # A short line without a full stop is a chart title or a label, not a cut sentence.
    return previous.length >= 40 or previous.marked


def _emit(blocks: list[Block], ranks: list[int], piece: Line | Table | None, text: Joined) -> None:
    """Append the block a piece makes (``text``: a paragraph's joined text); headings'
    ranks are kept aside for ``_dense_levels``."""
    if piece is None:
        return
    if isinstance(piece, dict):
        blocks.append(piece)
    elif piece.kind == "heading" and piece.text:
        blocks.append(Heading(type="heading", text=piece.text, level=piece.rank))
        ranks.append(piece.rank)
    elif piece.kind == "caption" and piece.text:
        blocks.append(Caption(type="caption", text=piece.text))
    elif piece.kind == "paragraph":
        paragraph = emphasis(str(text))
        if paragraph["text"]:
            blocks.append(paragraph)


def _dense_levels(blocks: list[Block], ranks: list[int]) -> list[Block]:
    """Number heading levels 1, 2, 3 by the ranks the article actually uses."""
    level = {rank: position + 1 for position, rank in enumerate(sorted(set(ranks)))}
    for block in blocks:
        if block["type"] == "heading":
            block["level"] = min(level[block["level"]], 3)
    return blocks


def emphasis(raw: str) -> Paragraph:
    """A paragraph from text with ``**bold**`` marks: the marks become ``strong`` ranges."""
    parts = raw.split("**")
    if len(parts) % 2 == 0:  # An unpaired ** is residue: drop it, keep the text.
        parts[-2:] = [parts[-2] + parts[-1]]
    text, strong = "", []
    for index, part in enumerate(parts):
        if index % 2 and part:
            strong.append([len(text), len(text) + len(part)])
        text += part
    stripped = text.strip()
    offset = len(text) - len(text.lstrip())
    paragraph = Paragraph(type="paragraph", text=stripped)
    ranges = [[max(a - offset, 0), min(b - offset, len(stripped))] for a, b in strong]
    if ranges := [r for r in ranges if r[0] < r[1]]:
        paragraph["strong"] = ranges
    if is_english(stripped):
        paragraph["lang"] = "en"
    return paragraph
