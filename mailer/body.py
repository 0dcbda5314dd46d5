"""An issue email's parts, base64-encoded once per edition, so each reader costs a few bytes.

Every reader of an edition gets the same HTML and text but for a handful of short slots (the
greeting and three links). Encoding the whole ≈100 KB part for each reader was most of the
cost of an email. Here each part is split at its slots and the long fixed stretches between
them are encoded once; per reader only the slots and the few bytes around them are encoded.

Base64 turns groups of three bytes into four characters, so where a fixed stretch starts
depends on how many bytes (0, 1 or 2) the slot before it left over: each stretch is encoded
once for each of the three cases. Lines stay within the 76 characters RFC 2045 allows; a
short piece may make a shorter line, which decoders ignore (line breaks carry no data in
base64). The decoded bytes are exactly those of the filled part with CRLF line ends, the
canonical form of text (RFC 2046 4.1.1), as ``mailer.message`` wrote it before.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
CRLF = b"\r\n"


def canonical(content: bytes) -> bytes:
    """``content`` with every line break as CRLF."""
    return _LINE_BREAK.sub(CRLF, content)


def encode_lines(data: bytes) -> bytes:
    """``data`` in base64, 76-character lines, each ended by CRLF (nothing for no data)."""
    return base64.encodebytes(data).replace(b"\n", CRLF)


@dataclass(frozen=True)
class _Stretch:
    """A fixed stretch of a part, encoded for each number of bytes left over before it.

    For ``carry`` leftover bytes (0, 1, 2) the stretch gives ``heads[carry]`` of its first
    bytes to complete the leftover group, ``middles[carry]`` is the encoding of the whole
    groups after that, and ``tails[carry]`` its last bytes, left over for what follows.
    """

    data: bytes
    heads: tuple[int, int, int]
    middles: tuple[bytes, bytes, bytes]
    tails: tuple[bytes, bytes, bytes]

    @classmethod
    def of(cls, data: bytes) -> _Stretch:
        cuts = [_cut(data, carry) for carry in range(3)]
        return cls(
            data,
            (cuts[0][0], cuts[1][0], cuts[2][0]),
            (cuts[0][1], cuts[1][1], cuts[2][1]),
            (cuts[0][2], cuts[1][2], cuts[2][2]),
        )

    def encode(self, carry: bytes, out: list[bytes]) -> bytes:
        """Append this stretch's encoding after ``carry`` to ``out``; the new leftover."""
        n = len(carry)
        head = self.heads[n]
        if n + len(self.data) < 3:
            return carry + self.data
        if n:
            out.append(encode_lines(carry + self.data[:head]))
        out.append(self.middles[n])
        return self.tails[n]


def _cut(data: bytes, carry: int) -> tuple[int, bytes, bytes]:
    """After ``carry`` leftover bytes: how many of ``data`` complete their group, the
    encoding of the whole groups that follow, and the bytes left over at the end."""
    head = min((3 - carry) % 3, len(data))
    end = head + (len(data) - head) // 3 * 3
    return head, encode_lines(data[head:end]), data[end:]


class EncodedPart:
    """One part of an edition (its HTML or its text), pre-encoded around its slots.

    Slot values are single lines (a greeting, links): an empty one, or one with a line break, is refused, so
    the part's line ends, and the final line break the email package always writes, are all
    in its fixed stretches and known when it is built.
    """

    def __init__(self, content: str, placeholder: re.Pattern[str]) -> None:
        pieces = placeholder.split(content)
        fixed = [canonical(piece.encode("utf-8")) for piece in pieces[0::2]]
        if not fixed[-1].endswith(CRLF):
            fixed[-1] += CRLF
        self.stretches = [_Stretch.of(data) for data in fixed]
        self.slots = pieces[1::2]

    def encode(self, values: Mapping[str, str]) -> bytes:
        """The part with ``values`` in its slots, in base64 with CRLF line ends."""
        return b"".join(self.pieces(values))

    def pieces(self, values: Mapping[str, str]) -> list[bytes]:
        """``encode``'s bytes in pieces, to be joined once with the rest of the email: each
        copy of the ≈100 KB of an email costs as much as encoding all its slots."""
        out: list[bytes] = []
        carry = b""
        for index, stretch in enumerate(self.stretches):
            carry = stretch.encode(carry, out)
            if index < len(self.slots):
                carry = _encode_value(carry + _single_line(values[self.slots[index]]), out)
        if carry:
            out.append(encode_lines(carry))
        return out


def _single_line(value: str) -> bytes:
    data = value.encode("utf-8")
    if not data or b"\r" in data or b"\n" in data:
        raise ValueError(
            "A personal value of the email (greeting or link) is empty or holds a line break."
        )
    return data


def _encode_value(data: bytes, out: list[bytes]) -> bytes:
    """Append the whole groups of ``data`` to ``out``; the leftover bytes."""
    end = len(data) // 3 * 3
    if end:
        out.append(encode_lines(data[:end]))
    return data[end:]
