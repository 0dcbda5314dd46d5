"""Reading text: article bodies in both formats, and the magazine's plain-text export.

The export (described in ``docs/import-format.md``) is a cover, a table of contents
(``目录``), then the articles, each starting with its title on a line of its own.
Paragraphs are single lines separated by blank lines; table rows are tab-separated lines.
It was made by copying from PDF pages and web pages, so it carries residue (sentences cut
by page breaks, portal navigation, Markdown quote marks) that the functions here remove.
Nothing here knows about topics, databases or Flask: text in, drafts out.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

from core.i18n import N_
from mailer.blocks import Block
from mailer.blocks import Caption
from mailer.blocks import Heading
from mailer.blocks import Paragraph
from mailer.blocks import Table


class NotAnIssue(ValueError):
    """The file is refused; ``str(error)`` is one plain English sentence saying why.

    ``msgid`` and ``params`` let a page show the same sentence in the editor's language.
    """

    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(msgid % params)


@dataclass(frozen=True)
class ParseWarning:
    """Something an editor should check about a file that was read; ``str()`` is in English.

    Kept as a message id and its values, so that pages can show it in the editor's language
    and a stored issue keeps it translatable (see :meth:`to_dict`).
    """

    msgid: str
    params: Mapping[str, str | int] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.msgid % self.params

    def to_dict(self) -> dict[str, Any]:
        """The warning as JSON can hold it: ``{"msgid": ..., "params": {...}}``."""
        return {"msgid": self.msgid, "params": dict(self.params)}


# What a line of an article body can be once read.
Kind = Literal[
    "blank",
    "residue",
    "meta",
    "source",
    "data_source",
    "row",
    "rule",  # a Markdown table's |---| line: dropped, it does not end the table
    "heading",
    "caption",
    "paragraph",
]

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CN_NUMERALS = "一二三四五六七八九十"
# Characters that make "3月" or "10家" a quantity rather than a heading number.
_UNITS = "年月日号时分秒亿万千百个家台项件名所种位次倍人元度届期批条款章节"

# Markdown residue left by copying from web pages: quote marks, links, autolinks.
_QUOTE_MARKS = re.compile(r"^(?:>\s?)+")
_LINK = re.compile(r"\[([^\[\]]*)\]\([^()\s]*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^<>\s]+)>")
_TEXT_ATX = re.compile(r"^#{1,6}\s+")

# Portal pages (gov.cn and friends) put navigation around the document they publish.
_MENU_WORDS = frozenset(
    {
        *("国务院", "总理", "新闻", "政策", "互动", "服务", "数据", "国情", "国家政务服务平台"),
        *("首页", "English", "简体", "繁體", "繁体", "无障碍", "登录", "注册", "搜索"),
        *("返回顶部", "打印", "关闭", "关闭窗口", "打印本页", "分享", "收藏"),
    }
)
_BREADCRUMB = re.compile(r"^(?:当前位置\s*[:：]\s*)?首页\s*[>＞›»]")
_SCAN_PROMPT = re.compile(r"^[(（]?\s*(?:扫一扫|扫码|扫描二维码)[^()（）]{0,20}[)）]?$")

# Metadata tables of portal documents: "发文机关：…", "标 题：…", several to a line.
_META_LABEL = (
    r"(?:标\s*题|发文机关|发文字号|来\s*源|主题分类|公文种类"
    r"|成文日期|发布日期|发布机构|索\s*引\s*号|分\s*类)"
)
_META_START = re.compile(rf"^{_META_LABEL}\s*[:：]")
_META_PAIR = re.compile(rf"({_META_LABEL})\s*[:：]\s*(.*?)(?=\s*{_META_LABEL}\s*[:：]|$)")

_SOURCE_BRACKETED = re.compile(r"^[(（]\s*(?:文章|本文)?来\s*源\s*[:：]\s*(.+?)\s*[)）]$")
_SOURCE_PLAIN = re.compile(r"^(?:文章|本文)?来\s*源\s*[:：]\s*(.+)$")
_SOURCE_TRAILING = re.compile(r"^(.*\S)\s*[(（]\s*来\s*源\s*[:：]\s*([^()（）]+?)\s*[)）]$")
_DATA_SOURCE = re.compile(r"^[【\[(（]?\s*(?:数据|资料)来源\s*[:：]\s*(.+?)\s*[】\])）]?$")
_SOURCE_DATE = re.compile(
    r"\s*[,，]\s*\d{4}\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?)?\s*(?:更新)?$"
)

_CAPTION_BARE = re.compile(r"^图\s*[:：]\s*(\S.*)$")
_CAPTION_NUMBERED = re.compile(
    r"^(?:图|表|Figure|Fig\.|Table)\s*\d+(?:[-.]\d+)?\s*(?:[:：.、]\s*|\s+)\S"
)

# Numbered headings and the depth their style usually has; levels are made dense per article.
_HEADINGS = (
    (re.compile(rf"^[{_CN_NUMERALS}]{{1,3}}\s*[、.．]\s*\S"), 1),
    (re.compile(rf"^[(（]\s*[{_CN_NUMERALS}]{{1,3}}\s*[)）]\s*\S"), 2),
    (re.compile(r"^\d{1,2}\.\d{1,2}\.\d{1,2}\s+\S"), 3),
    (re.compile(r"^\d{1,2}\.\d{1,2}\s+\S"), 2),
    (re.compile(r"^\d{1,2}\s*[、.．]\s*[^\d\s]"), 3),
    (re.compile(rf"^\d{{1,2}}(?:\s+|(?={CJK.pattern}))(?![{_UNITS}\d])\S"), 1),
)
_HEADING_MAX = 40

_ATX_HEADING = re.compile(r"(#{1,6})\s+(.+)")
_MD_ROW = re.compile(r"^\|.*\|$")
_MD_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_MD_ITEM = re.compile(r"^[-*+]\s+")
_MD_BREAK = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")

_AUTHOR_LABEL = re.compile(r"^(?:作者|文|撰文|记者|撰稿|供稿)\s*[:：/|｜]\s*(\S.*)$")
_NAMES = re.compile(rf"^{CJK.pattern}{{2,4}}(?:[\s、,，]+{CJK.pattern}{{2,4}})*$")
_ORGANISATION = re.compile(r"大学|学院|研究院|研究所|实验室|协会|学会|公司|集团|委员会|中心")
_CLAUSE_MARKS = re.compile(r"[，。；！？,;!?：:]")

# A line that ends with one of these has finished its sentence; anything else may go on.
_TERMINAL = tuple("。！？!?；;：:…”’\"'」』）)】")
_SENTENCE_MARKS = re.compile(r"[。！？]")

# Title comparison ignores the ways the same title differs between TOC and body.
_KEY_FOLD = str.maketrans({"“": '"', "”": '"', "„": '"', "「": '"', "」": '"', "『": '"',
                           "』": '"', "‘": "'", "’": "'", "—": "-", "–": "-", "‐": "-",
                           "―": "-", "－": "-", "・": "·", "•": "·"})  # fmt: skip
_KEY_DROP = re.compile(r"[\s*_#`>]+")


@dataclass
class Line:
    """One line of an article body, classified."""

    kind: Kind
    number: int
    text: str = ""
    cells: list[str] = field(default_factory=list)
    rank: int = 0
    source: str | None = None  # a 来源 note at the end of a paragraph line
    item: bool = False  # a Markdown list item: a paragraph of its own


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


# Lines: cleaning, keys, kinds.


def clean(line: str) -> str:
    """A line without surrounding space and web residue; ``**`` emphasis is kept."""
    text = _QUOTE_MARKS.sub("", line.strip()).strip()
    text = _AUTOLINK.sub(r"\1", _LINK.sub(r"\1", text))
    return text.strip()


def title_key(text: str) -> str:
    """What two spellings of one title share: no spaces, emphasis, width or quote style."""
    folded = unicodedata.normalize("NFKC", text).translate(_KEY_FOLD)
    return _KEY_DROP.sub("", folded).casefold()


def atx_heading(text: str) -> tuple[int, str] | None:
    """A Markdown ``#`` heading's level and text, or None when the line is not one.

    A closing run of ``#`` is dropped when a space stands before it (``## C#`` keeps its
    ``#``). Written without a regular expression over the line's end, which backtracks
    for minutes on one long line of ``#`` characters.
    """
    found = _ATX_HEADING.fullmatch(text)
    if found is None:
        return None
    title = found.group(2).rstrip()
    bare = title.rstrip("#")
    if not bare or bare[-1].isspace():
        title = bare.rstrip()
    return len(found.group(1)), title


def plain(text: str) -> str:
    """Text with its ``**`` emphasis markers removed."""
    return text.replace("**", "").strip()


def is_english(text: str) -> bool:
    """Whether a paragraph is English prose (no Chinese, at least three words)."""
    return not CJK.search(text) and len(re.findall(r"[A-Za-z]{2,}", text)) >= 3


def is_residue(text: str) -> bool:
    """Whether a line is web-page furniture: a menu word, a breadcrumb, a QR-code prompt."""
    return text in _MENU_WORDS or bool(_BREADCRUMB.match(text) or _SCAN_PROMPT.match(text))


def heading_rank(text: str) -> int:
    """The rank of a numbered heading (1 to 3), or 0 when the line is not one."""
    bare = plain(text)
    if len(bare) > _HEADING_MAX or "。" in bare[:-1] or bare.endswith(tuple("，,；;、：:")):
        return 0
    return next((rank for pattern, rank in _HEADINGS if pattern.match(bare)), 0)


def source_of(text: str) -> tuple[Kind, str] | None:
    """A source line's kind and value without brackets or label, or None."""
    data = _DATA_SOURCE.match(text)
    if data:
        return "data_source", _SOURCE_DATE.sub("", data.group(1)).strip()
    found = _SOURCE_BRACKETED.match(text) or _SOURCE_PLAIN.match(text)
    return ("source", found.group(1).strip()) if found else None


def classify(raw: str, number: int, key: str, *, markdown: bool) -> Line:
    """What one body line is; ``key`` is the article title's key, to drop a repeated title."""
    if "\t" in raw and raw.strip():
        return Line("row", number, cells=[plain(clean(cell)) for cell in raw.split("\t")])
    text = clean(raw)
    if markdown:
        return _classify_markdown(text, number, key)
    return _classify_text(_TEXT_ATX.sub("", text), number, key)


def _classify_markdown(text: str, number: int, key: str) -> Line:
    """Markdown's own constructs first, then what both formats share."""
    if _MD_RULE.match(text) and "|" in text:
        return Line("rule", number)
    if _MD_BREAK.match(text):
        return Line("residue", number)
    if _MD_ROW.match(text):
        cells = [plain(cell.strip()) for cell in text[1:-1].split("|")]
        return Line("row", number, cells=cells)
    heading = atx_heading(text)
    if heading and heading[0] >= 3:
        return Line("heading", number, plain(heading[1]), rank=heading[0] - 2)
    item = _MD_ITEM.match(text)
    line = _classify_text(text[item.end() :] if item else text, number, key)
    line.item = bool(item) and line.kind == "paragraph"
    return line


def _classify_text(text: str, number: int, key: str) -> Line:
    """The kinds shared by both formats, in the order that settles overlaps."""
    if not text:
        return Line("blank", number)
    if is_residue(text) or title_key(text) == key:
        return Line("residue", number)
    source = source_of(text)
    if source:
        return Line(source[0], number, source[1])
    if _META_START.match(text):
        return Line("meta", number, text)
    rank = heading_rank(text)
    if rank:
        return Line("heading", number, plain(text), rank=rank)
    caption = _CAPTION_BARE.match(text)
    if caption or _CAPTION_NUMBERED.match(text):
        return Line("caption", number, plain(caption.group(1) if caption else text))
    trailing = _SOURCE_TRAILING.match(text)
    if trailing:
        return Line("paragraph", number, trailing.group(1), source=trailing.group(2).strip())
    return Line("paragraph", number, text)


# Bodies: from classified lines to blocks.


def read_body(
    lines: Sequence[str], title: str, *, markdown: bool, preamble: dict[str, str] | None = None
) -> Body:
    """Read an article's lines (after its title) into blocks, byline and source.

    ``preamble`` is portal metadata that stood before the title (``发文机关``, ``来源``);
    it fills in the byline and source when the body has none of its own.
    """
    key = title_key(title)
    items = [classify(raw, number, key, markdown=markdown) for number, raw in enumerate(lines)]
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


def meta_pairs(text: str) -> dict[str, str]:
    """The label/value pairs of a portal metadata line, labels without inner spaces."""
    pairs = {re.sub(r"\s+", "", m.group(1)): m.group(2).strip() for m in _META_PAIR.finditer(text)}
    return {label: value for label, value in pairs.items() if value}


def _settle_rows(items: list[Line], key: str, *, markdown: bool) -> list[Line]:
    """A tab in a line with no row beside it is not a table: read that line again."""
    settled = list(items)
    for index, line in enumerate(items):
        beside = items[index - 1 : index] + items[index + 1 : index + 2]
        if line.kind == "row" and not any(other.kind == "row" for other in beside):
            text = " ".join(cell for cell in line.cells if cell)
            settled[index] = classify(text, line.number, key, markdown=markdown)
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
    if len(bare) > _HEADING_MAX or _CLAUSE_MARKS.search(bare):
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
        classify(" ".join(row), line.number, "", markdown=markdown)
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


# The plain-text export: cover, table of contents, articles.


_TOC_HEADING = re.compile(r"^目\s*录(?:\s*[|｜/]?\s*contents)?$|^contents$", re.IGNORECASE)
_TOC_MARKER = re.compile(r"^[-*•·]\s+")
_TOC_PAGE = re.compile(r"(?:\s+[-–—]+\s*|\s*(?:\.{2,}|…+|·{2,})\s*|\t+)(\d{1,3})$")
_TOC_ENTRY_MAX = 300  # No title is longer; longer lines are text, and never searched.
_TOC_SECTION = re.compile(r"^(?:[◆◇■□●○★☆▶►▪]\s*(\S.*)|【(.+)】)$")
_ISSUE_NUMBER = re.compile(r"总\s*第\s*(\d{1,5})\s*期")
# The numbers an issue can have: the magazine is at 361, and the archive's addresses and
# the database's integer column need a bound.
ISSUE_NUMBERS = range(1, 100_000)
_COVER_PERIOD = re.compile(r"(\d{4})\s*[/.\-年]\s*(\d{1,2})(?!\d)")
_ANY_PERIOD = re.compile(r"(\d{4})\s*[/.\-年]\s*(\d{1,2})\s*月(?:刊|号)?")
_MAGAZINE_NAME = re.compile(r"《([^《》]{2,20})》\s*(?:杂志|月刊|期刊)")


@dataclass
class Entry:
    """A table-of-contents line: an article's title and the section it is listed under."""

    title: str
    section: str


@dataclass
class Toc:
    """Where the table of contents is (0-based line indexes) and what it lists."""

    start: int
    end: int  # first line after it: the body search starts here
    sections: list[str]
    entries: list[Entry]


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


def _not_found(entry: Entry) -> ParseWarning:
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
            toc.entries.append(Entry(entry, section))
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
    if len(text) > 16 or _CLAUSE_MARKS.search(text):
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


def number_out_of_range(number: int) -> ParseWarning:
    """The warning for an issue number that cannot be one (0, negative, too large)."""
    return ParseWarning(
        N_("The issue number %(value)s is not one from 1 to 99999; it was left empty."),
        {"value": shortened(str(number))},
    )


def shortened(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with …, for quoting a value in a warning."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def locate(lines: list[str], toc: Toc) -> list[tuple[Entry, int, int]]:
    """Each entry's title lines in the body (first, last), searched in order after the TOC.

    A title matches a whole line, or two lines when it was wrapped; an entry that is not
    found is skipped, and the search for the next one starts where it stood.
    """
    places = _title_places([title_key(clean(line)) for line in lines], toc.end)
    found: list[tuple[Entry, int, int]] = []
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
    lines: list[str], found: list[tuple[Entry, int, int]], cover: list[str]
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
