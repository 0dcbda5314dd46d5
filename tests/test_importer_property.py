"""Whatever a file holds, the importer either returns an issue that keeps the block contract
or refuses the file with NotAnIssue: never another exception."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from issues.importer import SUMMARY_CHARS
from issues.importer import NotAnIssue
from issues.importer import ParsedIssue
from issues.importer import parse_issue
from issues.importer import summarise

# Message ids the editor pages can translate: every refusal and warning must be one of them.
CATALOGUE = Path(__file__).resolve().parent.parent / "issues" / "translations"
TRANSLATED = {
    message.id
    for message in read_po(io.BytesIO((CATALOGUE / "zh/LC_MESSAGES/messages.po").read_bytes()))
    if message.id and message.string
}

# Lines that steer the parser into each of its branches: cover, table of contents, titles
# in their variants, sources, tables, headings, residue, Markdown structure and YAML.
FRAGMENTS = [
    "", "", "", " ", "\t", "总第361期 | 2023/02月刊", "天堂之芯", "> 目录 CONTENTS", "目录",
    "◆ 芯动态", "◆ 芯资讯", "【芯政策】", "- 甲公司：获得投资 - 01", "- 芯片需要什么? - 02",
    "- 甲公司：获得投资", "- 乙", "甲公司：获得投资", "甲公司:获得投资", "甲公司：", "获得投资",
    "> 芯片需要什么？", "**芯片需要什么?**", "芯片需要什么？", "乙", "正文。", "正文没有结束",
    "这一行很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长的",
    "**加粗**文字", "**没配对", "（来源：集微网）", "(来源:集微网)", "数据来源: 海关",
    "【数据来源: 智慧芽, 2023/1/31 更新】", "来源：", "排名\t国家\t金额", "1\t中国\t1,590.1",
    "\t\t合计", "\t", "a\tb\t", "一、总体要求", "（一）主要思路", "1 引言", "2.1 方法", "1. 条目。",
    "4加强", "图：示意图", "图:", "国务院", "首页 > 政策 > 文件", "[首页](#) > [政策](#)",
    "(扫一扫,阅读原文)", "发文机关：工业和信息化部", "标 题： 甲 发文机关： 乙", "来 源： 丙",
    "骆军委 李树深", "中国科学院半导体研究所", "作者：张三", "参考译文：",
    "English words are here.", "lower case continues", "---", "...", "number: 1", "title: 小刊",
    "period: 2023-13-01", "period: 2023-02", "number: [1", "- a", "? [a]: b", "!!binary x",
    "# 芯企业", "## 文章", "### 小节", "#### 更小", "topics: policy, nope", "topics: all",
    "source: 集微网", "byline: 张三", "| a | b |", "|---|---|", "| 1 | |", "<!--", "-->",
    "*免责声明：", "\u3000", "\xa0", "\ufeff", "\x0c", "\r", "\x00", "￥", "𠀀", "é",
]  # fmt: skip

# Text without control characters (which mark a file as binary), for issue-shaped files.
plain_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
lines = st.one_of(st.sampled_from([f for f in FRAGMENTS if f != "\x00"]), plain_text)
documents = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=60)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"])
filenames = st.sampled_from([None, "issue.txt", "issue.md", "ISSUE.MARKDOWN", "x"])

TITLES = [
    "甲公司：获得投资",
    "芯片需要什么?",
    "乙",
    "2023年国家标准立项指南",
    "行动计划（2023—2025年）",
]
SECTIONS = ["芯动态", "芯企业", "芯资讯", "芯政策", "其他"]


def variants(title: str) -> st.SearchStrategy[str]:
    """The ways a title can stand in the body: as in the TOC, or differently written."""
    swapped = title.translate(str.maketrans("?：（）", "？:()"))
    half = len(title) // 2 or 1
    return st.sampled_from(
        [title, swapped, f"> {title}", f"**{title}**", f"{title[:half]}\n\n{title[half:]}",
         " ".join(title), f"正文里提到{title}的一句话。", ""]
    )  # fmt: skip


@st.composite
def text_issues(draw: st.DrawFn) -> str:
    """A cover, a table of contents, then a body where titles come back in variants."""
    titles = draw(st.lists(st.sampled_from(TITLES), min_size=1, max_size=5))
    out = [*draw(st.lists(lines, max_size=4)), draw(st.sampled_from(["目录", "> 目录 CONTENTS"]))]
    for title in titles:
        if draw(st.booleans()):
            out.append(f"◆ {draw(st.sampled_from(SECTIONS))}")
        out.append(f"- {title}" + draw(st.sampled_from(["", " - 01", " …… 3", "\t9"])))
    for title in titles:
        out.append(draw(variants(title)))
        out += draw(st.lists(lines, max_size=8))
    return "\n".join(out)


@st.composite
def markdown_issues(draw: st.DrawFn) -> str:
    """Optional front matter, then sections, articles, key lines and body lines."""
    out: list[str] = []
    if draw(st.booleans()):
        out = ["---", *draw(st.lists(st.sampled_from(FRONT_LINES), max_size=4)), "---"]
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            out.append(f"# {draw(st.sampled_from(SECTIONS))}")
        out.append(f"## {draw(st.sampled_from(TITLES))}")
        out += draw(st.lists(st.sampled_from(KEY_LINES), max_size=3))
        out += draw(st.lists(lines, max_size=8))
    return "\n".join(out)


FRONT_LINES = [
    "number: 361", "number: 总第3期", "number: -1", "number: 1.5", "number: ~", "title: 小刊",
    "title: 2023", "title: [a, b]", "period: 2023-02", "period: 2023/2", "period: 2023-02-30",
    "period: 1", "period: 二〇二三年", "other: x", "x: &a [1]", "y: *a", "? [1, 2]", "bad: [",
    "- item", "number: 99999999999999999999", "period: 2023-02-01T10:00:00Z",
]  # fmt: skip
KEY_LINES = ["topics: policy", "topics: all", "topics: sports, data", "topics:", "source: 甲",
             "byline: 乙", "Topics: [data]", ""]  # fmt: skip


def parse_or_refuse(data: bytes, filename: str | None = None) -> ParsedIssue | None:
    """Parse; a refusal must carry a one-line message that pages can translate."""
    try:
        return parse_issue(data, filename=filename)
    except NotAnIssue as refused:
        message = str(refused)
        assert message
        assert "\n" not in message
        assert refused.msgid in TRANSLATED
        return None


def check_contract(parsed: ParsedIssue) -> None:
    """What every parsed issue promises whatever its input."""
    assert parsed.format in ("text", "markdown")
    assert len(parsed.content_hash) == 64
    assert parsed.period is None or len(parsed.period) == 7
    assert all(str(warning) and warning.msgid in TRANSLATED for warning in parsed.warnings)
    assert parsed.articles
    assert len({id(article) for article in parsed.articles}) == len(parsed.articles)
    assert len({section.name for section in parsed.sections}) == len(parsed.sections)
    for section in parsed.sections:
        assert section.articles
    for article in parsed.articles:
        assert len(article.summary) <= SUMMARY_CHARS
        assert set(article.topics) <= {"policy", "companies", "data"}
        assert article.chars >= 0
        blocks: list[Any] = list(article.blocks)  # each kind has its own keys
        for block in blocks:
            kind = block["type"]
            if kind == "table":
                assert all(len(row) == len(block["header"]) for row in block["rows"])
            elif kind == "heading":
                assert 1 <= block["level"] <= 3
            else:
                assert block["text"]
            if kind == "paragraph":
                text = block["text"]
                assert "**" not in text
                for start, end in block.get("strong", []):
                    assert 0 <= start < end <= len(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), filenames)
def test_arbitrary_bytes_parse_or_are_refused(data: bytes, filename: str | None) -> None:
    """Random bytes never raise anything but NotAnIssue."""
    parsed = parse_or_refuse(data, filename)
    if parsed is not None:
        check_contract(parsed)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000), encodings, filenames)
def test_arbitrary_text_parses_or_is_refused(
    text: str, encoding: str, filename: str | None
) -> None:
    """Random text in any supported encoding never raises anything but NotAnIssue."""
    parsed = parse_or_refuse(text.encode(encoding, errors="ignore"), filename)
    if parsed is not None:
        check_contract(parsed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents.map("\n".join), encodings, filenames)
def test_lines_of_issue_fragments_parse_or_are_refused(
    text: str, encoding: str, filename: str | None
) -> None:
    """Issue-like lines in random order, control characters included, keep the contract."""
    parsed = parse_or_refuse(text.encode(encoding, errors="ignore"), filename)
    if parsed is not None:
        check_contract(parsed)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_issues(), encodings)
def test_text_exports_parse_or_are_refused(text: str, encoding: str) -> None:
    """A table of contents with titles coming back in variants parses or is refused."""
    parsed = parse_or_refuse(text.encode(encoding, errors="ignore"), "issue.txt")
    if parsed is not None:
        check_contract(parsed)
        assert parsed.format == "text"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdown_issues(), encodings)
def test_markdown_issues_parse_or_are_refused(text: str, encoding: str) -> None:
    """Markdown with odd front matter, key lines and bodies parses or is refused."""
    parsed = parse_or_refuse(text.encode(encoding, errors="ignore"), "issue.md")
    if parsed is not None:
        check_contract(parsed)
        assert parsed.format == "markdown"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=80)), max_size=10))
def test_summaries_never_exceed_the_limit(texts: list[str]) -> None:
    """Any paragraphs give a summary of at most 120 characters that starts one of them."""
    blocks = [{"type": "paragraph", "text": text} for text in texts if text.strip()]
    summary = summarise(blocks)  # type: ignore[arg-type]
    assert len(summary) <= SUMMARY_CHARS
    start = summary.removesuffix("…")
    assert not summary or any(block["text"].strip().startswith(start) for block in blocks)
