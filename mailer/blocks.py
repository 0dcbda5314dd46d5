"""The shape of an article's body, shared by the importer, the renderer and the archive.

An article body is a list of blocks, stored as JSON. Each block is a small dict with a
``type`` key; the TypedDicts below are the contract between the importer (which makes
them) and the renderer (which draws them). Keep them flat and JSON-friendly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal
from typing import NotRequired
from typing import TypedDict
from urllib.parse import quote

from markupsafe import Markup
from markupsafe import escape

BLOCK_TYPES = ("paragraph", "heading", "table", "caption")


class Paragraph(TypedDict):
    """Running text. ``strong`` lists [start, end) character ranges shown with emphasis."""

    type: Literal["paragraph"]
    text: str
    strong: NotRequired[list[list[int]]]
    lang: NotRequired[str]  # "en" for the English translation that follows some articles


class Heading(TypedDict):
    """A numbered heading inside an article (``1 …``, ``2.1 …``, ``一、…``); level 1 to 3."""

    type: Literal["heading"]
    text: str
    level: int


class Table(TypedDict):
    """A data table. Cells keep numbers exactly as written in the source."""

    type: Literal["table"]
    header: list[str]
    rows: list[list[str]]


class Caption(TypedDict):
    """A figure or table caption (``图: …``)."""

    type: Literal["caption"]
    text: str


Block = Paragraph | Heading | Table | Caption


def runs(paragraph: Paragraph) -> Iterator[tuple[str, bool]]:
    """Split a paragraph into (text, is_strong) runs, in order, covering every character."""
    text = paragraph["text"]
    position = 0
    for start, end in sorted(paragraph.get("strong", [])):
        start, end = max(start, position), min(end, len(text))
        if start >= end:
            continue
        if start > position:
            yield text[position:start], False
        yield text[start:end], True
        position = end
    if position < len(text):
        yield text[position:], False


def block_counts(blocks: list[Block]) -> dict[str, int]:
    """How many blocks of each type an article has (every type present, zero included)."""
    counts = dict.fromkeys(BLOCK_TYPES, 0)
    for block in blocks:
        counts[block["type"]] += 1
    return counts


def plain_text(blocks: list[Block]) -> str:
    """The article's text as plain lines, for the text/plain part and character counts."""
    lines: list[str] = []
    for block in blocks:
        if block["type"] == "table":
            lines.append("\t".join(block["header"]))
            lines.extend("\t".join(row) for row in block["rows"])
        else:
            lines.append(block["text"])
    return "\n".join(lines)


# A run of Latin letters, digits and punctuation without a space: a long word or a URL. Gmail,
# Outlook.com and Yahoo ignore overflow-wrap, so such a run would widen the email; a break point
# every BREAK_EVERY characters gives every client a place to break it (it shows nothing). In a
# word it is a zero-width space; in an email or web address, which readers copy, it is a <wbr>
# element, because a copied zero-width space would stay inside the address and break it.
LONG_RUN = 24
BREAK_EVERY = 12
ZERO_WIDTH_SPACE = "\u200b"
WORD_BREAK = Markup("<wbr>")
_LONG_RUN = re.compile(
    rf"[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]{{{LONG_RUN},}}"
)
_ADDRESS = re.compile(r"@|://|(?:^|\W)www\.", re.IGNORECASE)


def breakable(text: str) -> Markup:
    """``text`` escaped for HTML, with a break opportunity inside every long unbroken run."""
    text = str(text)
    pieces: list[Markup] = []
    position = 0
    for match in _LONG_RUN.finditer(text):
        pieces.append(escape(text[position : match.start()]))
        pieces.append(_broken(match.group(0)))
        position = match.end()
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


def _broken(run: str) -> Markup:
    """One long run, escaped, with a break point every BREAK_EVERY characters."""
    chunks = [escape(run[start : start + BREAK_EVERY]) for start in range(0, len(run), BREAK_EVERY)]
    mark = WORD_BREAK if _ADDRESS.search(run) else escape(ZERO_WIDTH_SPACE)
    return mark.join(chunks)


# A web address in running text. Clients link such text themselves, but only up to the first
# break point, so the email links it whole itself and breaks only the shown text. The host is
# Latin. The path ends at a space, a quote or anything not ASCII, except a run of Chinese that
# more of the path follows (/新闻/2023, /报告.pdf): Chinese writers run an address straight into
# their next words (…/zwgk/查看详情。), which must not become part of the link, and a last
# segment in Chinese cannot be told from them, so it is left out (second review of issue 12).
_URL = re.compile(
    r"https?://[^\s/?#\u2e80-\u9fff\uff00-\uffef<>\"']+"
    r"(?:[/?#](?:[!#-&(-;=?-~]|[^\x00-\x7f\s\u2000-\u206f\u3000-\u303f\uff00-\uffef]+"
    r"(?=[/?#]|\.[A-Za-z0-9]))*)?"
)


def linked(text: str) -> Markup:
    """``breakable(text)`` with each http(s) address in it a link to the whole address."""
    pieces: list[Markup] = []
    position = 0
    for match in _URL.finditer(str(text)):
        url = match.group(0).rstrip(".,;:!?)]}")
        if url.endswith("//"):  # a scheme and nothing after it
            continue
        pieces.append(breakable(text[position : match.start()]))
        pieces.append(Markup('<a href="{}">{}</a>').format(_ascii(url), breakable(url)))
        position = match.start() + len(url)
    pieces.append(breakable(text[position:]))
    return Markup("").join(pieces)


def _ascii(url: str) -> str:
    """``url`` with its non-ASCII characters percent-encoded (UTF-8), as a link target every
    client reads the same way."""
    return "".join(char if char.isascii() else quote(char) for char in url)
