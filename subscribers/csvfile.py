"""Subscriber CSV files: reading an upload into checked rows, and writing the export.

Columns: email, name, organisation, topics, format, language, member. Only ``email`` is
required; other columns may be missing or empty. The Chinese names of the columns
(邮箱/姓名/单位/主题/格式/语言/会员) and of the values (政策/企业/数据, 全文/摘要, 中文/英文,
是/否) are read as well as the English ones, as a spreadsheet made in Chinese has them. Problems are reported per line as a code
and the offending value, so that the page shows them in the editor's language.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from core import topics as core_topics
from core.i18n import translations
from subscribers.service import UNSAFE_TEXT
from subscribers.service import AddressError
from subscribers.service import email_hash
from subscribers.service import normalise

if TYPE_CHECKING:
    from _csv import Reader

COLUMNS = ("email", "name", "organisation", "topics", "format", "language", "member")
TRUE_WORDS = frozenset({"yes", "y", "true", "1", "是", "x"})
FALSE_WORDS = frozenset({"no", "n", "false", "0", "否", ""})
# Between topics in a cell: the half-width marks, and the full-width ones Chinese input gives.
TOPIC_SEPARATORS = re.compile(r"[;|,\s、；，]+")
# Spreadsheets run cells that start with these as formulas; exported values get a quote first.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_LENGTHS = {"name": 100, "organisation": 200}
# Column names as a Chinese (or English) spreadsheet spells them -> the column.
COLUMN_NAMES = {
    "邮箱": "email",
    "电子邮箱": "email",
    "邮箱地址": "email",
    "e-mail": "email",
    "姓名": "name",
    "单位": "organisation",
    "organization": "organisation",
    "主题": "topics",
    "格式": "format",
    "语言": "language",
    "会员": "member",
}
FORMAT_WORDS = {
    "full": "full",
    "全文": "full",
    "全文版": "full",
    "digest": "digest",
    "摘要": "digest",
    "摘要版": "digest",
}
LANGUAGE_WORDS = {
    "zh": "zh",
    "中文": "zh",
    "chinese": "zh",
    "en": "en",
    "英文": "en",
    "english": "en",
}


class CsvError(ValueError):
    """The file as a whole cannot be read; ``code`` names the reason."""

    def __init__(self, code: str, detail: str = "", columns: tuple[str, ...] = ()) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail
        # The column names as the file spells them, for a problem with the header.
        self.columns = columns


@dataclass
class ImportRow:
    """One valid CSV line, normalised."""

    line: int
    email: str
    email_hash: str
    name: str | None
    organisation: str | None
    topics: tuple[str, ...]
    format: str | None
    locale: str | None
    member: bool


@dataclass(frozen=True)
class RowError:
    line: int
    code: str  # email, duplicate, topic, format, language, member, too_long, control
    value: str


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without the BOM Excel writes), else GB18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # GB18030 decodes UTF-16 and binary files too, but a text file holds no NUL (and
        # PostgreSQL cannot store one).
        if "\x00" not in text:
            return text
        break
    raise CsvError("encoding")


def _reader(text: str) -> Reader:
    # newline="" hands line breaks to the csv module, which also ends lines on a bare CR (as
    # Excel for Mac writes them) instead of failing on it.
    return csv.reader(io.StringIO(text, newline=""))


def count_rows(text: str) -> int:
    """The number of data lines; raises CsvError when a line cannot be read as CSV at all.

    The only such case for the default dialect is a cell beyond the csv module's size limit,
    most often a quotation mark that is never closed. ``detail`` is the line it starts on.
    """
    reader = _reader(text)
    rows, start = 0, 1
    try:
        for _cells in reader:
            rows, start = rows + 1, reader.line_num + 1
    except csv.Error:
        raise CsvError("unreadable", str(start)) from None
    return max(rows - 1, 0)


def header(text: str) -> list[str]:
    """The checked header row as columns (lower-cased); raises CsvError when ``email`` is
    missing or two columns of the file are the same column (``email`` and ``邮箱``)."""
    written = written_header(text)
    names = [COLUMN_NAMES.get(name.lower(), name.lower()) for name in written]
    if "email" not in names:
        raise CsvError("no_email_column")
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in COLUMNS and first.setdefault(name, index) != index:
            raise CsvError("duplicate_column", columns=(written[first[name]], written[index]))
    return names


def written_header(text: str) -> list[str]:
    """The first line's column names as the editor wrote them (trimmed)."""
    try:
        first = next(_reader(text), None)
    except csv.Error:
        raise CsvError("unreadable", "1") from None
    if not first:
        raise CsvError("empty")
    return [name.strip() for name in first]


def parse(
    text: str, topics: Sequence[str], skip: int = 0
) -> Iterator[tuple[int, ImportRow | RowError]]:
    """Yield (data line index, row or error) for every data line after the first ``skip``.

    Line numbers in rows and errors are the file's own (the header is line 1). Duplicates are
    found across the whole file, including the skipped part.
    """
    names = header(text)
    # A problem with a column names it as the file does ("单位", "organization").
    spelled = dict(zip(names, written_header(text), strict=True))
    reader = _reader(text)
    next(reader)
    seen: dict[str, int] = {}
    for index, cells in enumerate(reader):
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        result = check_row(line, dict(zip(names, cells, strict=False)), topics, spelled)
        if isinstance(result, ImportRow):
            first = seen.setdefault(result.email_hash, line)
            if first != line:
                result = RowError(line, "duplicate", str(first))
        if index >= skip:
            yield index, result


def check_row(
    line: int, cells: dict[str, str], topics: Sequence[str], spelled: dict[str, str] | None = None
) -> ImportRow | RowError:
    """One data line, checked and normalised, or the first problem found in it; a problem with
    a column names it as ``spelled`` (the file's header) does."""
    column = spelled or {}
    raw_email = _unquote(cells.get("email", "").strip())
    try:
        email = normalise(raw_email)
    except AddressError:
        return RowError(line, "email", raw_email)
    texts: dict[str, str | None] = {}
    for name, limit in MAX_LENGTHS.items():
        value = _unquote(cells.get(name, "").strip())
        if UNSAFE_TEXT.search(value):
            return RowError(line, "control", column.get(name, name))
        if len(value) > limit:
            return RowError(line, "too_long", column.get(name, name))
        texts[name] = value or None
    named = topic_names(tuple(topics))
    typed = [t for t in TOPIC_SEPARATORS.split(cells.get("topics", "").strip().lower()) if t]
    unknown = [t for t in typed if t not in named]
    if unknown:
        return RowError(line, "topic", unknown[0])
    chosen = [named[t] for t in typed]
    typed_format = cells.get("format", "").strip().lower()
    format_ = FORMAT_WORDS.get(typed_format, "")
    if typed_format and not format_:
        return RowError(line, "format", typed_format)
    typed_language = cells.get("language", "").strip().lower()
    language = LANGUAGE_WORDS.get(typed_language, "")
    if typed_language and not language:
        return RowError(line, "language", typed_language)
    member = cells.get("member", "").strip().lower()
    if member not in TRUE_WORDS | FALSE_WORDS:
        return RowError(line, "member", member)
    return ImportRow(
        line=line,
        email=email,
        email_hash=email_hash(email),
        name=texts["name"],
        organisation=texts["organisation"],
        topics=tuple(sorted(set(chosen))) if chosen else tuple(topics),
        format=format_ or None,
        locale=language or None,
        member=member in TRUE_WORDS,
    )


@cache
def topic_names(keys: tuple[str, ...]) -> dict[str, str]:
    """Every way a file may name a topic -> its key: the key, its English and Chinese names."""
    chinese = translations("zh").gettext
    named: dict[str, str] = {}
    for key in keys:
        for name in (key, core_topics.label(key, str), core_topics.label(key, chinese)):
            named.setdefault(name.strip().lower(), key)
    return named


def chinese_topic_names(keys: Sequence[str]) -> str:
    """政策、企业、数据: the topics as a Chinese file names them, in the configured order."""
    return "、".join(core_topics.label(key, translations("zh").gettext) for key in keys)


def template_lines(locale: str, topics: Sequence[str]) -> Iterator[str]:
    """A CSV to fill in: the header in ``locale`` and one made-up example line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if locale == "zh":
        names = chinese_topic_names(topics[:2])
        writer.writerow(("邮箱", "姓名", "单位", "主题", "格式", "语言", "会员"))
        writer.writerow(("wang.fang@example.com", "王芳", "示例单位", names, "摘要", "中文", "是"))
    else:
        names = ";".join(topics[:2])
        writer.writerow(COLUMNS)
        writer.writerow(("jane@example.com", "Jane Doe", "Example Ltd", names, "full", "en", "no"))
    yield "\ufeff" + buffer.getvalue()


def _formula_like(text: str) -> bool:
    # Values already starting with quotes before a formula character are quoted once more, so
    # that removing exactly one quote on import gives back every value exactly.
    return text.lstrip("'").startswith(FORMULA_START)


def _unquote(value: str) -> str:
    # Undo the quote our own export puts before formula-like values, so a round trip is exact.
    if value.startswith("'") and _formula_like(value):
        return value[1:]
    return value


def safe_cell(value: str | None) -> str:
    """A value that a spreadsheet shows as text, never runs as a formula."""
    text = value or ""
    return "'" + text if _formula_like(text) else text


def export_lines(rows: Iterable[tuple[str, ...]]) -> Iterator[str]:
    """CSV text, one chunk per line, header first; a BOM so that Excel reads it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow((*COLUMNS, "status"))
    yield "\ufeff" + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        yield buffer.getvalue()
