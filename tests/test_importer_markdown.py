"""The Markdown issue format: front matter, sections, articles and their key lines, and the
project's sample issue, which must read the same in Markdown and in the text export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from issues.importer import NotAnIssue
from issues.importer import ParsedIssue
from issues.importer import parse_issue
from issues.importer import to_json

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MD = ROOT / "samples" / "sample-issue.md"
SAMPLE_TXT = ROOT / "samples" / "sample-issue.txt"
DOC = ROOT / "docs" / "import-format.md"

FRONT = "---\nnumber: 12\ntitle: 小刊\nperiod: 2024-03\n---\n\n"


def md(text: str, filename: str | None = "issue.md") -> ParsedIssue:
    return parse_issue(text.encode(), filename=filename)


def only_article_blocks(text: str) -> list[dict[str, object]]:
    """The blocks of the single article in a one-article Markdown issue."""
    parsed = md(FRONT + "# 芯企业\n\n## 标题\n\n" + text)
    return [dict(block) for block in parsed.articles[0].blocks]


def test_sample_reads_the_same_in_both_formats() -> None:
    """The Markdown and text samples give the same sections, titles, blocks and sources."""
    markdown = parse_issue(SAMPLE_MD.read_bytes(), filename=SAMPLE_MD.name)
    text = parse_issue(SAMPLE_TXT.read_bytes(), filename=SAMPLE_TXT.name)
    assert (markdown.format, text.format) == ("markdown", "text")
    assert [(s.name, s.topics) for s in markdown.sections] == [
        (s.name, s.topics) for s in text.sections
    ]
    for ours, theirs in zip(markdown.articles, text.articles, strict=True):
        assert (ours.title, ours.blocks, ours.source, ours.byline, ours.summary) == (
            theirs.title,
            theirs.blocks,
            theirs.source,
            theirs.byline,
            theirs.summary,
        )
    assert markdown.warnings == text.warnings == []


def test_sample_structure() -> None:
    """The sample has a cover line, five sections including 芯政策/芯企业/芯资讯, and its parts."""
    parsed = parse_issue(SAMPLE_TXT.read_bytes())
    assert (parsed.number, parsed.title, parsed.period) == (400, "示例之芯", "2026-05")
    assert [s.name for s in parsed.sections] == ["芯动态", "芯观点", "芯企业", "芯资讯", "芯政策"]
    kinds = {block["type"] for a in parsed.articles for block in a.blocks}
    assert kinds == {"paragraph", "heading", "table", "caption"}
    assert any(b.get("lang") == "en" for a in parsed.articles for b in a.blocks)
    assert all(a.source or a.title.startswith("示例市") for a in parsed.articles)


def test_sample_front_matter_and_topics_line() -> None:
    """Front matter gives number, title, period; a topics: line replaces the section's."""
    parsed = parse_issue(SAMPLE_MD.read_bytes())
    assert (parsed.number, parsed.title, parsed.period) == (400, "示例之芯", "2026-05")
    talent = next(a for a in parsed.articles if a.title == "示例省发布芯片人才白皮书")
    assert talent.topics == ["policy", "data"]
    assert talent.source == "示例人才网"


def test_documentation_example_parses_as_documented() -> None:
    """The Markdown example in docs/import-format.md imports into what the page says."""
    example = re.search(r"```markdown\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert example
    parsed = md(example.group(1))
    assert (parsed.number, parsed.title, parsed.period) == (400, "示例之芯", "2026-05")
    (found,) = parsed.articles
    assert (found.topics, found.source, found.byline) == (["companies", "data"], "示例芯闻", "林晓")
    assert to_json(parsed)["sections"][0]["articles"][0]["blocks"] == {
        "paragraph": 1,
        "heading": 2,
        "table": 1,
        "caption": 1,
    }


@pytest.mark.parametrize(
    ("value", "period"),
    [("2024-03", "2024-03"), ("2024/3", "2024-03"), ("2024年3月", "2024-03"),
     ("2024-03-01", "2024-03"), ("'2024-03'", "2024-03")],
)  # fmt: skip
def test_front_matter_period_forms(value: str, period: str) -> None:
    """The period is a year and month however it is written, YAML dates included."""
    parsed = md(f"---\nnumber: 1\ntitle: 小刊\nperiod: {value}\n---\n\n# 甲\n\n## 文章\n\n正文。")
    assert parsed.period == period
    assert parsed.warnings == []


@pytest.mark.parametrize(
    ("front", "warning"),
    [
        ("number: 第十二期\ntitle: 小刊\nperiod: 2024-03", "not a whole number"),
        ("title: 小刊\nperiod: 2024-03", "no issue number"),
        ("number: 12\nperiod: 2024-03", "no title"),
        ("number: 12\ntitle: 小刊\nperiod: 2024-13", "not a year and month"),
        ("number: 12\ntitle: 小刊\nperiod: 2024-03\neditor: 王", "“editor” is not used"),
    ],
)
def test_front_matter_problems_are_warnings(front: str, warning: str) -> None:
    """A missing or odd front matter value imports with a warning naming it."""
    parsed = md(f"---\n{front}\n---\n\n# 甲\n\n## 文章\n\n正文。")
    assert [w for w in parsed.warnings if warning in str(w)]
    assert [a.title for a in parsed.articles] == ["文章"]


def test_front_matter_number_written_with_characters() -> None:
    """总第12期 in the front matter still gives the number 12."""
    assert md("---\nnumber: 总第12期\ntitle: 小刊\n---\n\n## 文章\n\n正文。").number == 12


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\nnumber: [1, 2\n---\n\n## 文章\n\n正文。", "not valid YAML"),
        ("---\nperiod: 2023-13-01\n---\n\n## 文章\n\n正文。", "not valid YAML"),
        ("---\n- a list\n---\n\n## 文章\n\n正文。", "key: value"),
        (FRONT + "# 芯企业\n\n只有正文，没有文章标题。\n", "no articles"),
        ("---\n---\n", "no articles"),
    ],
)
def test_markdown_files_that_are_not_issues_are_refused(text: str, reason: str) -> None:
    """Broken front matter and files without ## articles raise NotAnIssue in one sentence."""
    with pytest.raises(NotAnIssue, match=reason) as refused:
        md(text)
    assert str(refused.value).endswith(".")


def test_article_key_lines() -> None:
    """topics:, source: and byline: right after ## set the article's fields, not paragraphs."""
    parsed = md(
        FRONT + "# 芯观点\n\n## 文章\nbyline: 张三 李四\nSource: 集微网\ntopics: data、policy\n\n"
        "正文。\n\n（来源：另一处）\n"
    )
    (found,) = parsed.articles
    assert (found.byline, found.source, found.topics) == ("张三 李四", "集微网", ["data", "policy"])
    assert found.blocks == [{"type": "paragraph", "text": "正文。"}]


@pytest.mark.parametrize(
    ("line", "topics", "warned"),
    [
        ("topics: all", [], False),
        ("topics: 全部", [], False),
        ("topics: policy, sports", ["policy"], True),
        ("topics: [data, data]", ["data"], False),
        ("topics:", [], False),
    ],
)
def test_topics_line_forms(line: str, topics: list[str], warned: bool) -> None:
    """all/全部 mean every reader; unknown names are dropped with a warning naming them."""
    parsed = md(FRONT + f"# 芯企业\n\n## 文章\n{line}\n\n正文。")
    assert parsed.articles[0].topics == topics
    assert bool([w for w in parsed.warnings if "sports" in str(w)]) == warned


def test_section_defaults_and_table_rule_apply_without_a_topics_line() -> None:
    """Without topics:, the section's topics apply, plus data for an article with a table."""
    parsed = md(FRONT + "# 芯企业\n\n## 甲\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## 乙\n\n正文。")
    assert [a.topics for a in parsed.articles] == [["companies", "data"], ["companies"]]


def test_paragraphs_wrap_over_lines_until_a_blank_line() -> None:
    """Consecutive lines make one paragraph: no space added in Chinese, one in English."""
    blocks = only_article_blocks("第一行，\n第二行。\n\nFirst line of English\ncontinues here.\n")
    assert blocks == [
        {"type": "paragraph", "text": "第一行，第二行。"},
        {"type": "paragraph", "text": "First line of English continues here.", "lang": "en"},
    ]


def test_markdown_headings_tables_and_captions() -> None:
    """### to ##### are headings, pipe tables keep cells as written, 图： is a caption."""
    blocks = only_article_blocks(
        "### 一级\n\n#### 二级\n\n##### 三级\n\n"
        "| 年份 | 产值 |\n|:---|---:|\n| 2024 | 1,234.5 |\n| 2025 | |\n\n图：产值变化\n"
    )
    assert blocks == [
        {"type": "heading", "text": "一级", "level": 1},
        {"type": "heading", "text": "二级", "level": 2},
        {"type": "heading", "text": "三级", "level": 3},
        {"type": "table", "header": ["年份", "产值"], "rows": [["2024", "1,234.5"], ["2025", ""]]},
        {"type": "caption", "text": "产值变化"},
    ]


def test_list_items_are_paragraphs_of_their_own() -> None:
    """- item lines do not run together into one paragraph."""
    blocks = only_article_blocks("- 第一项。\n- 第二项。\n")
    assert [b["text"] for b in blocks] == ["第一项。", "第二项。"]


def test_bold_and_links_in_markdown() -> None:
    """**bold** becomes a strong range and [text](url) its text."""
    blocks = only_article_blocks("详见[公告](https://example.com)，**重点**内容。\n")
    assert blocks == [{"type": "paragraph", "text": "详见公告，重点内容。", "strong": [[5, 7]]}]


def test_a_section_named_twice_collects_its_articles_once() -> None:
    """Two # lines with the same name make one section holding both articles, each once."""
    parsed = md(
        FRONT + "# 甲\n\n## 一\n\n正文。\n\n# 乙\n\n## 二\n\n正文。\n\n# 甲\n\n## 三\n\n正文。"
    )
    assert [(s.name, [a.title for a in s.articles]) for s in parsed.sections] == [
        ("甲", ["一", "三"]),
        ("乙", ["二"]),
    ]


def test_articles_before_any_section_and_empty_sections() -> None:
    """Articles before the first # go to a nameless section; a section without articles warns."""
    parsed = md(FRONT + "## 开篇\n\n正文。\n\n# 空栏目\n\n# 芯企业\n\n## 文章\n\n正文。")
    assert [(s.name, [a.title for a in s.articles]) for s in parsed.sections] == [
        ("", ["开篇"]),
        ("芯企业", ["文章"]),
    ]
    assert [w for w in parsed.warnings if "空栏目" in str(w)]


@pytest.mark.parametrize(
    ("text", "filename", "fmt"),
    [
        (FRONT + "## 文章\n\n正文。", None, "markdown"),
        (FRONT + "## 文章\n\n正文。", "issue.txt", "markdown"),
        ("## 文章\n\n正文。", "issue.md", "markdown"),
        ("## 文章\n\n正文。", "ISSUE.MARKDOWN", "markdown"),
    ],
)
def test_format_detection(text: str, filename: str | None, fmt: str) -> None:
    """Front matter, or a .md name with ## articles, makes a file Markdown."""
    assert md(text, filename).format == fmt


def test_markdown_without_front_matter_or_md_name_is_read_as_text() -> None:
    """Without front matter a .txt file with ## lines is the text export (here: no TOC)."""
    with pytest.raises(NotAnIssue, match="No table of contents"):
        md("## 文章\n\n正文。", "issue.txt")


def test_markdown_spans_and_comments() -> None:
    """Spans are the ## line and the last line of text; <!-- comments --> are not text."""
    parsed = md(
        FRONT
        + "# 甲\n\n<!-- 备注\n多行 -->\n## 文章\n\n正文。\n<!-- 尾注 -->\n\n## 下一篇\n\n正文。"
    )
    first = parsed.articles[0]
    assert first.span == (11, 13)
    assert first.blocks == [{"type": "paragraph", "text": "正文。"}]
