"""The issue importer on the real seed issue, its re-encodings and cut-down copies, and on
small issues written here to pin each rule (title variants, sources, tables, bad files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from issues.importer import SUMMARY_CHARS
from issues.importer import NotAnIssue
from issues.importer import ParsedArticle
from issues.importer import ParsedIssue
from issues.importer import decode
from issues.importer import parse_issue
from issues.importer import summarise
from issues.importer import to_json
from mailer.blocks import Block
from mailer.blocks import Paragraph
from mailer.blocks import plain_text
from tests.helpers import SEED

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "sample-issue.txt"

# The table of contents of issue 361, section by section, as printed.
SEED_TOC = {
    "芯动态": 2,
    "芯观点": 2,
    "芯企业": 13,
    "芯资讯": 12,
    "芯政策": 4,
    "芯伙伴": 1,
}

_cache: dict[str, ParsedIssue] = {}


def seed_bytes() -> bytes:
    """The seed file; its absence is a failure, not a skip."""
    assert SEED.is_file(), f"the seed issue is missing: {SEED}"
    return SEED.read_bytes()


def seed() -> ParsedIssue:
    """The seed, parsed once for the tests that only read it."""
    if "seed" not in _cache:
        _cache["seed"] = parse_issue(seed_bytes())
    return _cache["seed"]


def article(title: str, issue: ParsedIssue | None = None) -> ParsedArticle:
    """The article with this title (the table of contents' spelling)."""
    found = [a for a in (issue or seed()).articles if a.title == title]
    assert len(found) == 1, f"{title!r} found {len(found)} times"
    return found[0]


def paragraphs(found: ParsedArticle) -> list[str]:
    return [block["text"] for block in found.blocks if block["type"] == "paragraph"]


def toc_titles() -> list[str]:
    """Entry titles as they stand in the seed's table of contents."""
    text = seed_bytes().decode("utf-8")
    toc = text[text.index("目录 CONTENTS") : text.index("*免责声明")]
    return [re.sub(r" - \d+$", "", line[2:]) for line in toc.splitlines() if line.startswith("- ")]


def small_issue(body: str, toc: str = "- 第一篇文章 - 01\n- 第二篇文章 - 02") -> bytes:
    """A minimal issue in the text export's shape around the given body."""
    return (
        f"总第7期 | 2024/03月刊\n\n小刊\n\n> 目录 CONTENTS\n\n◆ 芯企业\n\n{toc}\n\n{body}\n"
    ).encode()


# The seed: metadata, sections, articles in order, their starts and ends.


def test_seed_cover_metadata() -> None:
    """The cover line 总第361期 | 2023/02月刊 and the masthead give number, period and title."""
    parsed = seed()
    assert (parsed.number, parsed.period, parsed.title) == (361, "2023-02", "天堂之芯")
    assert parsed.format == "text"
    assert parsed.warnings == []


def test_seed_has_six_sections_with_every_toc_article_in_order() -> None:
    """All 34 table-of-contents articles are found, in order, under their six sections."""
    parsed = seed()
    assert {s.name: len(s.articles) for s in parsed.sections} == SEED_TOC
    assert [s.name for s in parsed.sections] == list(SEED_TOC)
    assert [a.title for a in parsed.articles] == toc_titles()
    assert len(parsed.articles) == 34


def test_seed_articles_follow_each_other_without_overlap() -> None:
    """Each article starts after the previous one ends, and after the table of contents."""
    spans = [a.span for a in seed().articles]
    assert all(span is not None for span in spans)
    starts_and_ends = [line for span in spans if span for line in span]
    assert starts_and_ends == sorted(starts_and_ends)
    assert starts_and_ends[0] > 187  # The last line of the table of contents.


@pytest.mark.parametrize(
    ("title", "span", "first", "last"),
    [
        # Also on the cover (line 9): the body's occurrence is the one that counts.
        ("浙江省半导体行业协会荣誉理事长严晓浪荣获第六届“IC创新奖”之产业创新突出贡献奖",
         (192, 217), "2月15日,中国集成电路创新联盟", None),
        # The TOC has a half-width ?, the body a full-width ？.
        ("ChatGPT需要怎样的芯片?", (330, 366), "最近，以ChatGPT为首", "总体来说，目前这一代AI芯片"),
        # The body line has an extra space after the colon.
        ("宁波众芯半导体：总投资近10亿元，光电和功率器件IDM项目开工", (438, 444), "2月8日", None),
        # The title is wrapped over two lines with a blank line between.
        ("浙江丽水晶引：投资约55亿元，高端COF基板项目开工", (454, 464), "2月21日", "根据此前丽水"),
        # The body line carries Markdown quote residue "> ".
        ("科技部火炬中心发布2022年创新型产业集群", (526, 546), "2月17日", None),
        # The title is repeated in the body, and an issuing body line follows it.
        ("中国半导体行业协会严正声明", (657, 698), "据海外媒体报道", "Reviewing history"),
        # Ends at its source: the gov.cn page furniture after it is not its text.
        ("中国电科46所成功制备6英寸氧化镓单晶", (1057, 1065),
         "近日，中国电科46所", "中国电科46所氧化镓团队"),
        ("2023年国家标准立项指南", (1097, 1171),
         "为全面贯彻党的二十大精神", "(二) 与国家标准制修订"),
        # The body line has a stray space where the TOC has none.
        ("关于组织开展浙江省2023年度创新型中小企业和专精特新中小企业申报工作的预通知",
         (1347, 1390), "各有关企业：", "2023年2月21日"),
        # The last article stops before the back cover, which repeats the front cover.
        ("浙江省半导体行业协会", (1394, 1426),
         "浙江省半导体行业协会成立于", "地址：杭州市滨江区六和路368号海创基地北楼B4068"),
    ],
)  # fmt: skip
def test_seed_article_starts_and_ends(
    title: str, span: tuple[int, int], first: str, last: str | None
) -> None:
    """An article begins at its title line and ends where its own text ends."""
    found = article(title)
    assert found.span == span
    texts = paragraphs(found)
    assert texts[0].startswith(first)
    if last is not None:
        assert texts[-1].startswith(last)


def test_seed_articles_hold_no_web_page_furniture() -> None:
    """No article contains gov.cn navigation, breadcrumbs, QR prompts or lone menu words."""
    furniture = ("国家政务服务平台", "国务院政策文件库", "首页 >", "[首页]", "扫一扫", "发文字号")
    for found in seed().articles:
        text = plain_text(found.blocks)
        assert not [f for f in furniture if f in text], found.title
        assert not {"国务院", "总理", "新闻", "互动", "国情"} & set(text.splitlines()), found.title


def test_seed_back_cover_is_not_article_text() -> None:
    """The imprint repeated from the front cover does not end up in the last article."""
    text = plain_text(article("浙江省半导体行业协会").blocks)
    assert "杭州国家集成电路设计产业化基地有限公司" not in text
    assert "incub@hicc.org.cn" not in text


def test_every_seed_source_line_becomes_its_articles_source() -> None:
    """Each 来源 line is found in the source of the article whose span holds it."""
    lines = seed_bytes().decode("utf-8").splitlines()
    pattern = re.compile(r"^[(（]来源[:：](.+)[)）]$")
    checked = 0
    for number, line in enumerate(lines, start=1):
        found = pattern.match(line.strip())
        if not found:
            continue
        owner = [a for a in seed().articles if a.span and a.span[0] <= number <= a.span[1]]
        assert len(owner) == 1, line
        assert owner[0].source is not None
        assert owner[0].source.split("；")[0] == found.group(1), line
        checked += 1
    assert checked == 26


@pytest.mark.parametrize(
    ("title", "source"),
    [
        ("2023年杭州市重点项目公布", "爱集微"),
        ("国资委：加大集成电路等关键领域科技投入", "数字经济联合会"),
        # The article's own source first, then the data source of its tables.
        ("2022年中国集成电路进出口分析", "集微网；海关总署 集微咨询整理"),
        # 【数据来源: 智慧芽, 2023/1/31 更新】: brackets, label and date removed.
        ("中国大陆半导体封测领域TOP10企业专利排行榜", "今日半导体；智慧芽"),
        # From the gov.cn metadata (来 源： 标准委网站) standing before the title.
        ("2023年国家标准立项指南", "标准委网站"),
        ("浙江丽水签约项目89个，含富乐德半导体等项目", None),
    ],
)
def test_seed_sources(title: str, source: str | None) -> None:
    """Source lines become the article's source and never a paragraph."""
    found = article(title)
    assert found.source == source
    assert not [p for p in paragraphs(found) if "来源" in p[:8]]


@pytest.mark.parametrize(
    ("title", "byline"),
    [
        (
            "加强半导体基础能力建设点亮半导体自立自强发展的“灯塔”",
            "骆军委 李树深，中国科学院半导体研究所 半导体超晶格国家重点实验室 北京 100083",
        ),
        ("中国半导体行业协会严正声明", "中国半导体行业协会"),
        # 发文机关 from the portal metadata before the title.
        ("2023年国家标准立项指南", "标准委"),
        ("2023年杭州市重点项目公布", None),
        ("ChatGPT需要怎样的芯片?", None),
    ],
)
def test_seed_bylines(title: str, byline: str | None) -> None:
    """Author and affiliation lines after the title become the byline, not paragraphs."""
    found = article(title)
    assert found.byline == byline
    if byline:
        assert not [p for p in paragraphs(found) if p in byline]


# Tables: counts read off the seed. 2022年中国集成电路进出口分析 has three tables: imports
# by country and exports by country (rank, country, amount, share, growth: 5 columns, a
# header and 10 countries), and components (5 columns, a header and 5 kinds).
# 2022年全球十大芯片采购商情况 has one: 7 columns, a header, the top 10, then "Others" and
# "Total Market", whose two rank cells are empty.
@pytest.mark.parametrize(
    ("title", "shapes"),
    [
        ("2022年中国集成电路进出口分析", [(5, 10), (5, 10), (5, 5)]),
        ("2022年全球十大芯片采购商情况", [(7, 12)]),
        ("科技部火炬中心发布2022年创新型产业集群", [(2, 12)]),
        ("中国大陆半导体封测领域TOP10企业专利排行榜", [(6, 10)]),
        ("2022年度全球光刻机市场", [(7, 2)]),
        ("浙江省半导体行业协会荣誉理事长严晓浪荣获第六届“IC创新奖”之产业创新突出贡献奖", [(2, 9)]),
    ],
)  # fmt: skip
def test_seed_tables_have_the_rows_and_columns_of_the_source(
    title: str, shapes: list[tuple[int, int]]
) -> None:
    """Tab-separated rows become tables of the right size, every row as wide as the header."""
    tables = [b for b in article(title).blocks if b["type"] == "table"]
    assert [(len(t["header"]), len(t["rows"])) for t in tables] == shapes
    for table in tables:
        assert all(len(row) == len(table["header"]) for row in table["rows"])


def test_seed_table_cells_keep_numbers_as_written() -> None:
    """Cells keep thousands separators, signs and percent signs; empty leading cells stay."""
    buyers = next(b for b in article("2022年全球十大芯片采购商情况").blocks if b["type"] == "table")
    assert buyers["header"][0] == "2022 Rank"
    assert buyers["rows"][0] == ["1", "1", "Apple", "67,056", "11.1", "68,851", "-2.6"]
    assert buyers["rows"][-1] == ["", "", "Total Market", "601,694", "100.0", "594,952", "1.1"]
    trade = next(b for b in article("2022年中国集成电路进出口分析").blocks if b["type"] == "table")
    assert trade["rows"][0] == ["1", "中国台湾", "1,590.1", "38.3%", "2.4%"]


def test_seed_table_title_and_figure_lines_are_captions() -> None:
    """图: lines (label removed) and the title line above a table are captions."""
    captions = [
        b["text"] for b in article("2022年中国集成电路进出口分析").blocks if b["type"] == "caption"
    ]
    assert captions == [
        "2022年集成电路进口主要国家",
        "2022年集成电路出口主要国家",
        "2022年集成电路细分元器件进出口状况",
    ]
    patents = article("中国大陆半导体封测领域TOP10企业专利排行榜").blocks
    figures = [b["text"] for b in patents if b["type"] == "caption"]
    assert "中国大陆半导体封测领域TOP10企业专利被引频次分析" in figures
    assert not [f for f in figures if f.startswith("图")]
    assert len(figures) == 6


def headings(title: str) -> list[tuple[str, int]]:
    return [(b["text"], b["level"]) for b in article(title).blocks if b["type"] == "heading"]


def test_seed_numbered_headings_get_levels() -> None:
    """1 …, 2.1 … and 4加强… are headings of levels 1 and 2; (1) … paragraphs are not."""
    found = headings("加强半导体基础能力建设点亮半导体自立自强发展的“灯塔”")
    assert found[:3] == [
        ("1 加强半导体基础能力建设具有重大战略意义", 1),
        ("2 美国正在加强半导体基础研究能力", 1),
        ("2.1 加大半导体人才的培养和引进", 2),
    ]
    assert found[-1] == ("4加强半导体基础研究能力建设的建议", 1)
    assert len(found) == 10


def test_seed_chinese_numbered_headings_nest() -> None:
    """一、 is level 1, 1、 under it level 2; 一、（一）1. nest as levels 1, 2, 3."""
    lithography = headings("2022年度全球光刻机市场")
    assert lithography[:3] == [("一、光刻机出货情况", 1), ("二、ASML", 1), ("1、出货情况", 2)]
    plan = headings("浙江省“415X”先进制造业集群建设行动方案（2023—2027年）")
    assert plan[:5] == [
        ("一、总体要求", 1),
        ("（一）主要思路", 2),
        ("（二）主要目标", 2),
        ("二、主要任务", 1),
        ("（一）实施空间腾换行动，优化制造业发展空间。", 2),
    ]
    assert ("1. 整治低效工业用地。", 3) in plan
    standards = headings("2023年国家标准立项指南")
    assert ("(三) 国家标准样品。", 2) in standards


@pytest.mark.parametrize(
    ("title", "joined"),
    [
        ("加强半导体基础能力建设点亮半导体自立自强发展的“灯塔”", "从娃娃抓起。20世纪60-90年代是"),
        ("加强半导体基础能力建设点亮半导体自立自强发展的“灯塔”", "追求器件尺寸微缩提升集成密度"),
        ("2023年浙江省半导体行业协会秘书长联席会议暨协会工作规划座谈会顺利举行", "同比增长约29%"),
        ("浙江丽水签约项目89个，含富乐德半导体等项目", "柔性薄膜封装基板研究院"),
        ("打造“中国数谷”，迈向世界领先", "深度融合，让高新区(滨江)成为"),
        ("2022年度全球光刻机市场", "(Hyper-NA) 的EUV光刻机，但一切都取决于成本"),
        ("智能检测装备产业发展行动计划（2023—2025年）", "等研发创新载体"),
    ],
)  # fmt: skip
def test_seed_paragraphs_cut_by_page_breaks_are_rejoined(title: str, joined: str) -> None:
    """A sentence cut at a page break is one paragraph again, with no space in Chinese."""
    assert [p for p in paragraphs(article(title)) if joined in p]


@pytest.mark.parametrize(
    ("title", "alone"),
    [
        ("2022年中国集成电路进出口分析", "2018年-2022年集成电路进出口金额"),
        ("浙江完成10大省技术创新中心布局", "成立时间：2022年1月"),
        ("ChatGPT需要怎样的芯片?", "GPU和新AI芯片，谁更有机会"),
    ],
)
def test_seed_short_lines_without_full_stop_stay_paragraphs_of_their_own(
    title: str, alone: str
) -> None:
    """Chart titles and labels are not taken for sentences cut by a page break."""
    assert alone in paragraphs(article(title))


def test_seed_bold_becomes_strong_ranges() -> None:
    """**bold** is a strong range over exactly the bold words, with no asterisk left."""
    found = article("浙江丽水签约项目89个，含富乐德半导体等项目")
    bold = [b for b in found.blocks if b["type"] == "paragraph" and "strong" in b]
    assert len(bold) == 1
    text = bold[0]["text"]
    words = [text[start:end] for start, end in bold[0]["strong"]]
    assert words == [
        "富乐德半导体产业项目",
        "超薄精密柔性薄膜封装基板生产线项目",
        "碳化硅器件和模块的研发、封装项目",
    ]
    for issue_article in seed().articles:
        assert "*" not in plain_text(issue_article.blocks)


def test_seed_english_translation_is_marked_english() -> None:
    """The translation after 参考译文： is English paragraphs; the Chinese text is not."""
    found = article("中国半导体行业协会严正声明")
    english = [b for b in found.blocks if b["type"] == "paragraph" and b.get("lang") == "en"]
    assert len(english) == 9
    assert english[0]["text"] == "Statement of China Semiconductor Industry Association"
    strong = english[6]
    assert [strong["text"][a:b] for a, b in strong.get("strong", [])] == [
        "CSIA calls on the global semiconductor industry and academia"
    ]
    chinese = [b for b in found.blocks if b["type"] == "paragraph" and "lang" not in b]
    assert chinese[0]["text"].startswith("据海外媒体报道")


@pytest.mark.parametrize(
    ("section", "topics"),
    [("芯动态", []), ("芯观点", []), ("芯企业", ["companies"]), ("芯资讯", ["data"]),
     ("芯政策", ["policy"]), ("芯伙伴", [])],
)  # fmt: skip
def test_seed_sections_topics(section: str, topics: list[str]) -> None:
    """Sections carry their default topics; an article with a table in an everyone-section
    still goes to everyone."""
    found = next(s for s in seed().sections if s.name == section)
    assert found.topics == topics
    assert all(a.topics == topics for a in found.articles)


def test_table_adds_data_topic_except_in_sections_for_everyone() -> None:
    """A table tags an article data in a topic section, and not in an everyone-section."""
    parsed = parse_issue(SAMPLE.read_bytes())
    assert article("云杉微电子：完成2亿元B轮融资", parsed).topics == ["companies", "data"]
    assert article("青禾封测：车规级测试产线投产", parsed).topics == ["companies"]
    assert article("示例协会举办第三届芯片设计青年沙龙", parsed).topics == []


def test_custom_section_topics_and_topic_set() -> None:
    """A caller's own mapping decides topics; sections missing from it go to everyone."""
    parsed = parse_issue(
        seed_bytes(), section_topics={"芯观点": ["views"]}, topics=("views", "data")
    )
    by_name = {s.name: s for s in parsed.sections}
    assert by_name["芯观点"].topics == ["views"]
    assert by_name["芯资讯"].topics == []
    assert all(not a.topics for a in by_name["芯资讯"].articles)


def test_section_mapping_naming_an_unknown_topic_is_a_programming_error() -> None:
    """A section mapped to a topic outside the topic set raises ValueError, not NotAnIssue."""
    with pytest.raises(ValueError, match="unknown topics") as raised:
        parse_issue(seed_bytes(), section_topics={"芯政策": ["sports"]})
    assert not isinstance(raised.value, NotAnIssue)


def test_seed_summaries_are_first_sentences_within_the_limit() -> None:
    """Every summary is short, and either whole sentences or a clipped first one."""
    for found in seed().articles:
        assert 0 < len(found.summary) <= SUMMARY_CHARS, found.title
        assert found.summary[-1] in "。！？.!?”)）…", found.title
    assert article("中国电科46所成功制备6英寸氧化镓单晶").summary == (
        "近日，中国电科46所成功制备出我国首颗6英寸氧化镓单晶，达到国际最高水平。"
        "氧化镓是新型超宽禁带半导体材料，拥有优异的物理化学特性，在微电子与光电子领域均拥有广阔的应用前景。"
    )


def test_seed_to_json_has_the_command_shape() -> None:
    """to_json gives exactly the keys of issue import --json, and survives json.dumps."""
    shape = json.loads(json.dumps(to_json(seed()), ensure_ascii=False))
    assert set(shape) == {"number", "title", "period", "sections", "warnings"}
    assert (shape["number"], shape["period"], shape["title"]) == (361, "2023-02", "天堂之芯")
    first = shape["sections"][0]
    assert set(first) == {"name", "articles"}
    entry = first["articles"][0]
    assert set(entry) == {"title", "topics", "source", "summary", "blocks", "chars"}
    assert entry["blocks"] == {"paragraph": 4, "heading": 0, "table": 1, "caption": 1}
    assert entry["source"] == "浙江省半导体行业协会"
    trade = shape["sections"][3]["articles"][2]
    assert trade["title"] == "2022年中国集成电路进出口分析"
    assert trade["blocks"]["table"] == 3


def test_chars_counts_plain_text_without_spaces() -> None:
    """chars counts every character of the blocks' plain text except white space."""
    blocks: list[Block] = [
        Paragraph(type="paragraph", text="芯片 ab"),
        {"type": "table", "header": ["甲", "乙"], "rows": [["1", "22"]]},
    ]
    assert ParsedArticle("t", None, None, blocks, [], "").chars == 4 + 2 + 3


# Variants of the same seed: encodings, line ends, table of contents, truncation.


def seed_json() -> dict[str, object]:
    return to_json(seed())


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("gb18030"),
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
        lambda text: text.replace("\n", "\r\n").encode("utf-8"),
        lambda text: text.replace("\n", "\r\n").encode("gb18030"),
        lambda text: text.encode("utf-16"),
    ],
    ids=["gb18030", "utf-8-bom", "crlf", "gb18030-crlf", "utf-16-bom"],
)
def test_seed_reencoded_parses_the_same(encode: object) -> None:
    """Re-encoded or with CRLF line ends, the seed gives the same issue and content hash."""
    assert callable(encode)
    parsed = parse_issue(encode(seed_bytes().decode("utf-8")))
    assert to_json(parsed) == seed_json()
    assert [a.blocks for a in parsed.articles] == [a.blocks for a in seed().articles]
    assert parsed.content_hash == seed().content_hash


def test_sample_in_gbk_parses_like_utf8() -> None:
    """The sample saved as GBK (as Chinese office software does) reads the same."""
    text = SAMPLE.read_text(encoding="utf-8")
    assert to_json(parse_issue(text.encode("gbk"))) == to_json(parse_issue(text.encode()))


def test_seed_toc_without_page_numbers_parses_the_same() -> None:
    """A table of contents whose entries have no page numbers finds the same articles."""
    text = re.sub(r"^(- .*) - \d+$", r"\1", seed_bytes().decode(), flags=re.MULTILINE)
    assert " - 01" not in text
    assert to_json(parse_issue(text.encode())) == seed_json()


def test_truncated_seed_imports_what_is_there_and_warns_per_missing_article() -> None:
    """Cut inside an article, the file keeps the articles before and names each missing one."""
    lines = seed_bytes().decode().splitlines()
    parsed = parse_issue("\n".join(lines[:800]).encode())
    titles = toc_titles()
    assert [a.title for a in parsed.articles] == titles[:24]
    assert [s.name for s in parsed.sections] == ["芯动态", "芯观点", "芯企业", "芯资讯"]
    assert len(parsed.warnings) == 34 - 24
    for warning, title in zip(parsed.warnings, titles[24:], strict=True):
        assert title in str(warning)
        assert str(warning).endswith("was not found in the text.")
        assert warning.params["title"] == title  # kept apart, for pages to translate
    last = parsed.articles[-1]
    assert last.title == "浙江完成10大省技术创新中心布局"
    assert paragraphs(last)[-1].startswith("省技术创新中心是技术创新中心体系的核心组成部分")


def test_file_cut_right_after_the_toc_is_refused() -> None:
    """With the table of contents but no article text at all, there is nothing to import."""
    text = seed_bytes().decode()
    with pytest.raises(NotAnIssue, match="None of the 34 articles"):
        parse_issue(text[: text.index("*免责声明")].encode())


def test_content_hash_is_the_sha256_of_the_decoded_text() -> None:
    """The hash identifies the text, so a re-import of the same issue is recognised."""
    import hashlib

    assert seed().content_hash == hashlib.sha256(seed_bytes()).hexdigest()
    changed = parse_issue(seed_bytes().replace("天堂之芯".encode(), "天堂之心".encode(), 1))
    assert changed.content_hash != seed().content_hash


# Title variants, written small.


@pytest.mark.parametrize(
    ("toc_title", "body_title"),
    [
        ("芯片需要什么?", "芯片需要什么？"),
        ("芯片需要什么？", "芯片需要什么?"),
        ("甲公司：获得投资", "甲公司:获得投资"),
        ("关于印发办法（试行）的通知", "关于印发办法(试行)的通知"),
        ("甲公司 完成融资", "甲公司完成融资"),
        ("甲公司完成融资", "甲公司　完成 融资"),
        ("甲公司：获得投资", "甲公司：\n\n获得投资"),
        ("甲公司：获得投资", "甲公司：\n获得投资"),
        ("甲公司获得投资", "> 甲公司获得投资"),
        ("甲公司获得投资", "**甲公司获得投资**"),
        ("甲公司获得投资", "## 甲公司获得投资"),
        ("“芯火”基地揭牌", '"芯火"基地揭牌'),
        ("行动计划（2023—2025年）", "行动计划（2023-2025年）"),
        ("ChatGPT需要怎样的芯片", "chatgpt需要怎样的芯片"),
    ],
)
def test_title_variants_are_found(toc_title: str, body_title: str) -> None:
    """The body's title line matches its TOC entry despite width, spaces, wrapping, residue."""
    body = f"{body_title}\n\n第一篇的正文。\n\n第二篇文章\n\n第二篇的正文。"
    parsed = parse_issue(small_issue(body, toc=f"- {toc_title} - 01\n- 第二篇文章 - 02"))
    assert [a.title for a in parsed.articles] == [toc_title, "第二篇文章"]
    assert [paragraphs(a) for a in parsed.articles] == [["第一篇的正文。"], ["第二篇的正文。"]]
    assert parsed.warnings == []


def test_title_inside_a_sentence_or_on_the_cover_is_not_the_article_start() -> None:
    """Only a whole line after the TOC starts an article, not a mention before or within."""
    body = (
        "第一篇文章\n\n正文提到第二篇文章的标题，第二篇文章\n是一句话的一部分吗？不是整行。\n\n"
        "第二篇文章\n\n第二篇的正文。"
    )
    cover = small_issue(body).replace("小刊\n".encode(), "小刊\n\n第二篇文章\n".encode())
    parsed = parse_issue(cover)
    first, second = parsed.articles
    assert paragraphs(first)[0] == "正文提到第二篇文章的标题，第二篇文章"
    assert paragraphs(second) == ["第二篇的正文。"]


def test_toc_without_section_markers_uses_short_lines_followed_by_entries() -> None:
    """A short unmarked line directly above entries names their section."""
    raw = (
        "总第7期 | 2024/03月刊\n\n小刊\n\n目录\n\n芯企业\n- 第一篇文章\n\n芯政策\n- 第二篇文章\n\n"
    )
    body = "第一篇文章\n\n正文一。\n\n第二篇文章\n\n正文二。\n"
    parsed = parse_issue((raw + body).encode())
    assert [(s.name, s.topics) for s in parsed.sections] == [
        ("芯企业", ["companies"]),
        ("芯政策", ["policy"]),
    ]


# Smaller rules of the body, written small.


@pytest.mark.parametrize(
    ("line", "source"),
    [
        ("（来源：集微网）", "集微网"),
        ("(来源:集微网)", "集微网"),
        ("(来源：矽力杰半导体技术(杭州)有限公司)", "矽力杰半导体技术(杭州)有限公司"),
        ("来源：集微网", "集微网"),
        ("数据来源: 海关总署 集微咨询整理", "海关总署 集微咨询整理"),
        ("【数据来源: 智慧芽, 2023/1/31 更新】", "智慧芽"),
        ("【数据来源：智慧芽，2023/1/23 更新】", "智慧芽"),
        ("正文最后一句。（来源：科技日报）", "科技日报"),
    ],
)
def test_source_line_forms(line: str, source: str) -> None:
    """Each way of writing a source becomes article.source, without label or brackets."""
    parsed = parse_issue(small_issue(f"第一篇文章\n\n正文。\n\n{line}\n\n第二篇文章\n\n正文。"))
    first = parsed.articles[0]
    assert first.source == source
    assert [p for p in paragraphs(first) if "来源" in p] == []


def test_table_rows_of_uneven_width_are_padded_to_the_widest() -> None:
    """Rows with trailing or leading empty cells keep their positions in a rectangular table."""
    rows = "年份\t产值\t增长\n2022\t100\n\t200\t5%\n2024\t300\t6%\t\t\n"
    parsed = parse_issue(small_issue(f"第一篇文章\n\n{rows}\n第二篇文章\n\n正文。"))
    table = next(b for b in parsed.articles[0].blocks if b["type"] == "table")
    assert table["header"] == ["年份", "产值", "增长"]
    assert table["rows"] == [["2022", "100", ""], ["", "200", "5%"], ["2024", "300", "6%"]]


def test_a_lone_line_with_a_tab_is_not_a_table() -> None:
    """One tab-bearing line among paragraphs is read as a paragraph."""
    parsed = parse_issue(small_issue("第一篇文章\n\n甲\t乙\n\n第二篇文章\n\n正文。"))
    assert parsed.articles[0].blocks == [{"type": "paragraph", "text": "甲 乙"}]


def test_lines_indented_with_a_tab_are_paragraphs_not_a_table() -> None:
    """Consecutive lines that each start with a tab fill one cell: they stay paragraphs."""
    body = "第一篇文章\n\n\t第一段。\n\t第二段。\n\n第二篇文章\n\n正文。"
    parsed = parse_issue(small_issue(body))
    assert paragraphs(parsed.articles[0]) == ["第一段。", "第二段。"]


def test_unpaired_bold_marks_leave_no_asterisks() -> None:
    """A stray ** is residue: removed, with the words it would have covered kept plain."""
    body = "第一篇文章\n\n**甲公司**今日宣布**融资。\n\n第二篇文章\n\n正文。"
    parsed = parse_issue(small_issue(body))
    assert parsed.articles[0].blocks == [
        {"type": "paragraph", "text": "甲公司今日宣布融资。", "strong": [[0, 3]]}
    ]


@pytest.mark.parametrize(
    ("blocks", "summary"),
    [
        ([], ""),
        ([Paragraph(type="paragraph", text="第一句。第二句！第三句？")],
         "第一句。第二句！第三句？"),
        ([Paragraph(type="paragraph", text="短标签："),
          Paragraph(type="paragraph", text="这是第一段真正的正文内容，足够长了。后面还有。")],
         "这是第一段真正的正文内容，足够长了。后面还有。"),
        ([Paragraph(type="paragraph", text="甲" * 100 + "。" + "乙" * 30 + "。")],
         "甲" * 100 + "。"),
        ([Paragraph(type="paragraph", text="甲" * 70 + "，" + "乙" * 70 + "。")], "甲" * 70 + "…"),
        ([Paragraph(type="paragraph", text="甲" * 200)], "甲" * 119 + "…"),
        ([Paragraph(type="paragraph", text="It rose 15.92 percent. Then it fell.", lang="en")],
         "It rose 15.92 percent. Then it fell."),
        ([Paragraph(type="paragraph", text="English first line here.", lang="en"),
          Paragraph(type="paragraph", text="中文在后，但是摘要优先使用中文段落。")],
         "中文在后，但是摘要优先使用中文段落。"),
    ],
)  # fmt: skip
def test_summarise(blocks: list[Block], summary: str) -> None:
    """Summaries are whole first sentences up to 120 characters, or a clipped first one."""
    assert summarise(blocks) == summary


# Files that are not issues.


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b" \n\r\n\t ", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Word"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image"),
        (b"\x00\x01\x02\x03binary\x00", "not text"),
        (b"abc\x80\x80\x80\xff", "cannot be read"),
        (b"\xef\xbb\xbf\xff\xfe", "cannot be read"),
        ("随便写的一段话，没有目录。\n第二行。".encode(), "No table of contents"),
        ("目录\n\n这里没有条目。\n".encode(), "lists no articles"),
        ("目录\n\n- 不存在的文章 - 01\n\n正文。\n".encode(), "None of the 1 articles"),
        (bytes(range(256)) * 4, "not text"),
    ],
)
def test_files_that_are_not_issues_are_refused_in_one_sentence(data: bytes, reason: str) -> None:
    """Garbage, empty, binary and structureless files raise NotAnIssue with a plain sentence."""
    with pytest.raises(NotAnIssue) as refused:
        parse_issue(data)
    message = str(refused.value)
    assert reason in message
    assert "\n" not in message
    assert message.endswith(".")
    assert not re.search(r"[.;] [A-Z]", message[:-1]), "one sentence only"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("芯片".encode(), "芯片"),
        ("芯片".encode("gb18030"), "芯片"),
        ("芯片".encode("gbk"), "芯片"),
        (b"\xef\xbb\xbf" + "芯片".encode(), "芯片"),
        ("甲\r\n乙\r丙\n".encode(), "甲\n乙\n丙\n"),
        ("甲\f乙".encode(), "甲\n乙"),
        ("芯片".encode("utf-16"), "芯片"),
        ("e\u0301".encode(), "\u00e9"),
    ],
)
def test_decode(data: bytes, text: str) -> None:
    """decode detects the encoding, strips the BOM and normalises line ends and Unicode."""
    assert decode(data) == text
