"""The pre-encoded parts of issue emails decode to exactly the filled part, for any content."""

from __future__ import annotations

import base64
import re
from email.parser import BytesParser
from email.policy import SMTP

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from mailer.body import EncodedPart
from mailer.message import encoded_words
from mailer.message import to_line

PLACEHOLDER = re.compile(r"\[\[nl-abc-([a-z_]+)\]\]")
PIECES = ["a", "中", "\n", "\r\n", "\r", "é", "😀", "[[nl-abc-x]]", "[[nl-abc-y]]", "bb", "ccc"]


def filled_and_canonical(content: str, values: dict[str, str]) -> bytes:
    """What the part must decode to: the slots filled, CRLF line ends, a final line break,
    as the email package writes a text part."""
    filled = PLACEHOLDER.sub(lambda match: values[match.group(1)], content)
    return b"\r\n".join(filled.encode("utf-8").splitlines()) + b"\r\n"


@settings(max_examples=400, deadline=None)
@given(
    content=st.lists(st.sampled_from(PIECES), max_size=60).map("".join),
    x=st.text(alphabet="a中é😀<&", min_size=1, max_size=7),
    y=st.text(alphabet="uvw", min_size=1, max_size=4),
)
def test_a_part_decodes_to_its_filled_content_whatever_the_alignment(
    content: str, x: str, y: str
) -> None:
    """Slots and fixed stretches of every length (so every base64 alignment) decode exactly."""
    values = {"x": x, "y": y}
    encoded = EncodedPart(content, PLACEHOLDER).encode(values)
    assert base64.b64decode(encoded) == filled_and_canonical(content, values)
    lines = encoded.split(b"\r\n")
    assert lines[-1] == b"" and all(0 < len(line) <= 76 for line in lines[:-1])
    assert b"\n" not in encoded.replace(b"\r\n", b"")


def test_a_long_part_is_encoded_once_and_only_its_slots_per_reader() -> None:
    """The long stretch between two slots is the same bytes object for every reader."""
    content = "开头[[nl-abc-x]]" + "正文" * 20_000 + "[[nl-abc-y]]结尾\n"
    part = EncodedPart(content, PLACEHOLDER)
    one = part.encode({"x": "王伟", "y": "https://x.test/u/1"})
    two = part.encode({"x": "Anna", "y": "https://x.test/u/22"})
    assert base64.b64decode(one) == filled_and_canonical(
        content, {"x": "王伟", "y": "https://x.test/u/1"}
    )
    assert base64.b64decode(two) == filled_and_canonical(
        content, {"x": "Anna", "y": "https://x.test/u/22"}
    )
    # Every alignment of the middle stretch was encoded when the part was built.
    assert len({len(middle) for middle in part.stretches[1].middles}) >= 1
    assert sum(len(middle) for middle in part.stretches[1].middles) > 3 * 70_000


@pytest.mark.parametrize("value", ["", "a\nb", "a\rb", "https://x.test/\r\nBcc: x"])
def test_an_empty_or_multi_line_slot_value_is_refused(value: str) -> None:
    """A greeting or link that is empty or holds a line break cannot go into an email."""
    part = EncodedPart("Hi [[nl-abc-x]]\n", PLACEHOLDER)
    with pytest.raises(ValueError, match="empty or holds a line break"):
        part.encode({"x": value})


@pytest.mark.parametrize(
    "name",
    ["王", "王伟", "欧阳秀英" * 15, "Zoë Müller", "😀" * 30, "a" * 10 + "中" * 50, "é" * 60],
)
def test_a_name_becomes_encoded_words_that_read_back_and_fit_their_lines(name: str) -> None:
    """Each encoded-word is at most 75 characters, lines at most 78, and the name reads back."""
    words = encoded_words(name)
    assert all(len(word) <= 75 for word in words.split("\r\n "))
    line = to_line(name, "reader@example.com")
    assert all(len(part) <= 78 for part in line.split(b"\r\n"))
    header = BytesParser(policy=SMTP).parsebytes(line + b"\r\n")["To"]
    address = header.addresses[0]
    assert address.display_name.replace(" ", "") == name.replace(" ", "")
    assert address.addr_spec == "reader@example.com"
