"""Lines of an article body: cleaned of web residue, keyed, and classified by kind.

The magazine's export was made by copying from PDF pages and web pages, so its lines carry
residue (Markdown quote marks, links, portal navigation) that :func:`clean` removes, and
each line is one of a few kinds (:data:`Kind`) that :func:`classify_line` decides. Both
formats share these rules; Markdown adds its own constructs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

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
HEADING_MAX = 40

_ATX_HEADING = re.compile(r"(#{1,6})\s+(.+)")
_MD_ROW = re.compile(r"^\|.*\|$")
_MD_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_MD_ITEM = re.compile(r"^[-*+]\s+")
_MD_BREAK = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")

CLAUSE_MARKS = re.compile(r"[，。；！？,;!?：:]")

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
    if len(bare) > HEADING_MAX or "。" in bare[:-1] or bare.endswith(tuple("，,；;、：:")):
        return 0
    return next((rank for pattern, rank in _HEADINGS if pattern.match(bare)), 0)


def source_of(text: str) -> tuple[Kind, str] | None:
    """A source line's kind and value without brackets or label, or None."""
    data = _DATA_SOURCE.match(text)
    if data:
        return "data_source", _SOURCE_DATE.sub("", data.group(1)).strip()
    found = _SOURCE_BRACKETED.match(text) or _SOURCE_PLAIN.match(text)
    return ("source", found.group(1).strip()) if found else None


def classify_line(raw: str, number: int, key: str, *, markdown: bool) -> Line:
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


def meta_pairs(text: str) -> dict[str, str]:
    """The label/value pairs of a portal metadata line, labels without inner spaces."""
    pairs = {re.sub(r"\s+", "", m.group(1)): m.group(2).strip() for m in _META_PAIR.finditer(text)}
    return {label: value for label, value in pairs.items() if value}
