"""Break points and links in an article's text (mailer.blocks, review of issue 12): long
Latin runs get a place to break, but an email address or web address keeps no invisible
character that a reader would copy with it, and a link's target is the whole address, also
when its path is in Chinese."""

from __future__ import annotations

import re

import pytest

from mailer.blocks import LONG_RUN
from mailer.blocks import breakable
from mailer.blocks import linked

LONG_ADDRESS = "press-office.semiconductor-association@example-chip-industry.org.cn"
LONG_URL = "https://www.example-semiconductor-association.org.cn/reports/2023/annual-statistics.pdf"
LONG_BARE = "www.example-semiconductor-association.org.cn/reports/2023/annual-statistics.html"
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis"
BREAK = "<wbr>"


def shown(html: str) -> str:
    """The text a reader selects and copies: the HTML without its tags."""
    return re.sub(r"<[^>]+>", "", html).replace("&amp;", "&")


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize("render", [breakable, linked])
@pytest.mark.parametrize("address", [LONG_ADDRESS, LONG_URL, LONG_BARE])
def test_a_copied_address_has_no_invisible_character(render: object, address: str) -> None:
    """An email or web address longer than a break run can still break, but what a reader
    copies from it is the address itself, without a zero-width space."""
    assert len(address) > 2 * LONG_RUN
    html = str(render(f"请联系 {address} 咨询，{LONG_WORD}"))  # type: ignore[operator]
    address_html, word_html = html.split("，")
    assert "\u200b" not in address_html
    assert BREAK in address_html
    assert shown(address_html) == f"请联系 {address} 咨询"
    # A long word that is no address keeps its zero-width spaces; a link's target is whole.
    assert "\u200b" in word_html and word_html.replace("\u200b", "") == LONG_WORD
    assert hrefs(html) == ([address] if render is linked and "://" in address else [])


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("详见 https://example.org/新闻/2023 。", "https://example.org/新闻/2023"),
        ("详见https://example.org/新闻/2023，其中", "https://example.org/新闻/2023"),
        ("见“https://example.org/报告.pdf”", "https://example.org/报告.pdf"),
        ("详见https://zjtx.miit.gov.cn/，线上填写", "https://zjtx.miit.gov.cn/"),
        # Chinese words run straight after an address are not part of it (second review):
        ("访问https://www.miit.gov.cn/zwgk/查看详情。", "https://www.miit.gov.cn/zwgk/"),
        ("见https://example.org/新闻/2023年数据", "https://example.org/新闻/2023"),
        # ... so a last segment in Chinese, which cannot be told from them, is left out.
        ("参见 https://zh.wikipedia.org/wiki/半导体。", "https://zh.wikipedia.org/wiki/"),
    ],
)
def test_an_address_with_a_chinese_path_is_linked_whole(text: str, url: str) -> None:
    """A web address whose path has Chinese characters is one link to the whole address (in
    ASCII, as every client reads it), ending where Chinese punctuation, a space or the words
    after it end it."""
    html = str(linked(text))
    encoded = "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode()) for c in url)
    assert hrefs(html) == [encoded]
    assert shown(html) == text
    assert re.search(rf'<a href="[^"]*">{re.escape(url)}</a>', html.replace(BREAK, ""))
    # A Latin host followed by Chinese text ends there.
    assert hrefs(str(linked("访问https://example.org了解更多"))) == ["https://example.org"]
