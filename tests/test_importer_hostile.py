"""Hostile files: inputs built to hang or exhaust the importer are read in linear time or
refused in one sentence.

Each input here kept the importer busy for minutes (or until memory ran out) before its
fix and takes well under a second after it; the timeout only turns such a hang into a
failure, it measures nothing (bench/bench_import.py does that).
"""

from __future__ import annotations

import pytest

from issues.importer import LINE_LIMIT
from issues.importer import SUMMARY_CHARS
from issues.importer import NotAnIssue
from issues.importer import ParsedIssue
from issues.importer import parse_issue
from issues.importer import summarise
from mailer.blocks import Paragraph

FRONT = "---\nnumber: 12\ntitle: 小刊\nperiod: 2024-03\n---\n\n"
ONE_ARTICLE = "# 芯企业\n\n## 标题\n\n正文一句话。\n"
COVER = "总第12期 2024/03月刊\n小刊\n"

hang_guard = pytest.mark.timeout(20)


def md(text: str) -> ParsedIssue:
    return parse_issue(text.encode(), filename="issue.md")


def warned(parsed: ParsedIssue, words: str) -> bool:
    return any(words in str(warning) for warning in parsed.warnings)


def laughs(levels: int) -> str:
    """Front matter whose aliases make a list of 9**levels items once written out."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines)


@hang_guard
@pytest.mark.parametrize("key", ["title", "number", "period"])
def test_billion_laughs_in_the_front_matter_is_left_out(key: str) -> None:
    """A front matter value that aliases expand to 9**9 items is left out with a warning."""
    values = {"number": "12", "title": "小刊", "period": "2024-03", key: "*l9"}
    front = "\n".join(f"{name}: {value}" for name, value in values.items())
    parsed = md(f"---\n{laughs(9)}\n{front}\n---\n\n{ONE_ARTICLE}")
    assert warned(parsed, f"gives “{key}” a list or mapping")
    assert [a.title for a in parsed.articles] == ["标题"]


@pytest.mark.parametrize(
    "tag",
    ["!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!!binary aGk="],
)
def test_yaml_tags_never_run_code(tag: str) -> None:
    """Python tags are refused as invalid YAML; no other tag yields a value that is not text."""
    try:
        parsed = md(f"---\nnumber: 12\ntitle: {tag}\n---\n\n{ONE_ARTICLE}")
    except NotAnIssue as refused:
        assert "not valid YAML" in str(refused)
    else:
        assert isinstance(parsed.title, str)


@pytest.mark.parametrize("value", ["0", "-3", "99999999999999999999", "'12345678901'", "100000"])
def test_front_matter_numbers_out_of_range_are_left_empty(value: str) -> None:
    """An issue number that is not from 1 to 99999 is left empty with a warning, never cut."""
    parsed = md(f"---\nnumber: {value}\ntitle: 小刊\nperiod: 2024-03\n---\n\n{ONE_ARTICLE}")
    assert parsed.number is None
    assert warned(parsed, "not one from 1 to 99999")


def test_cover_number_zero_is_left_empty() -> None:
    """总第0期 on the cover is no issue number: left empty, with a warning saying so."""
    text = "总第0期 2024/03月刊\n小刊\n目录\n- 标题 - 1\n标题\n正文一句话。\n"
    parsed = parse_issue(text.encode())
    assert parsed.number is None
    assert warned(parsed, "0 is not one from 1 to 99999")


def test_too_many_lines_are_refused() -> None:
    """A file with more lines than any issue has is refused in one sentence."""
    text = FRONT + ONE_ARTICLE + "\n" * LINE_LIMIT
    with pytest.raises(NotAnIssue, match="import one issue at a time"):
        md(text)


@hang_guard
@pytest.mark.parametrize(
    "line",
    [
        "# " + "#" * 1_000_000 + " x",
        "## " + "#" * 1_000_000 + " x",
        "### " + "#" * 1_000_000 + " x",
    ],
    ids=["section", "article", "heading"],
)
def test_a_megabyte_heading_line_of_hashes(line: str) -> None:
    """A 1 MB line of # characters does not make the heading patterns backtrack."""
    parsed = md(FRONT + ONE_ARTICLE + line + "\n")
    assert parsed.articles[0].title == "标题"


def test_closing_hashes_need_a_space_before_them() -> None:
    """## Learning C# keeps its #; a closing run after a space is dropped."""
    parsed = md(FRONT + "# 芯企业 #\n\n## Learning C#\n\n正文。\n\n## 第二篇 ##\n\n正文。\n")
    assert [a.title for a in parsed.articles] == ["Learning C#", "第二篇"]
    assert [s.name for s in parsed.sections] == ["芯企业"]


@hang_guard
def test_a_megabyte_of_unclosed_comments() -> None:
    """Many <!-- without --> do not make the comment search rescan the file from each one."""
    parsed = md(FRONT + ONE_ARTICLE + "<!--" * 250_000 + "\n")
    assert [a.title for a in parsed.articles] == ["标题"]


def test_comments_are_blanked_and_line_numbers_kept() -> None:
    """A closed comment disappears, even over lines; an unclosed <!-- stays as text."""
    parsed = md(FRONT + "# 芯企业\n\n## 标题\n\n甲<!-- 注\n释 -->乙。\n\n丙 <!-- 未闭合\n")
    texts = [b["text"] for b in parsed.articles[0].blocks if b["type"] == "paragraph"]
    assert texts == ["甲乙。", "丙 <!-- 未闭合"]
    assert parsed.articles[0].span == (9, 14)


@hang_guard
def test_many_toc_entries_missing_from_a_long_body() -> None:
    """Ten thousand TOC entries that never appear do not each search the whole body."""
    entries = "".join(f"- 不存在的标题{i} - 1\n" for i in range(10_000))
    body = "标题\n" + "正文一句话。\n" * 39_000
    parsed = parse_issue(f"{COVER}目录\n- 标题 - 1\n{entries}{body}".encode())
    assert [a.title for a in parsed.articles] == ["标题"]
    assert len(parsed.warnings) == 10_000


@hang_guard
def test_a_paragraph_cut_by_thousands_of_page_breaks() -> None:
    """English lines joined across 20,000 page breaks are not re-read at every join."""
    lines = "\n\n".join(["this line of english prose goes on without an end"] * 20_000)
    parsed = parse_issue(f"{COVER}目录\n- 标题 - 1\n标题\n{lines}\n".encode())
    [paragraph] = parsed.articles[0].blocks
    assert paragraph["type"] == "paragraph" and paragraph["text"].count("prose") == 20_000


@hang_guard
def test_summary_of_a_paragraph_with_a_million_sentences() -> None:
    """The summary of a 5 MB paragraph looks only at the sentences that can fit."""
    text = "这是一句话。" * 800_000
    summary = summarise([Paragraph(type="paragraph", text=text)])
    assert summary == "这是一句话。" * (SUMMARY_CHARS // 6)
