"""From a file's bytes to its text: the encoding detected, binary files refused.

UTF-8 (with or without BOM), UTF-16/32 with BOM and GB18030 (a superset of GBK and GB2312)
are read. A file of another kind (PDF, Word, an image) is refused with a sentence naming
what it is, so that the editor knows to save the issue as text first.
"""

from __future__ import annotations

import re
import unicodedata

from core.i18n import N_
from issues.importer.errors import NotAnIssue
from issues.importer.lines import CJK

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
