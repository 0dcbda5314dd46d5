"""Issues beyond the bounds that keep rendering and pages quick are refused at import, in one
sentence that says which bound and what to do, in the editor's language on the page."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from issues.importer import NotAnIssue
from issues.importer import parse_issue
from issues.importer.limits import ARTICLE_CELLS_LIMIT
from issues.importer.limits import ARTICLES_LIMIT
from issues.importer.limits import TABLE_COLUMNS_LIMIT
from issues.models import Issue
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

FRONT = "---\nnumber: 12\ntitle: 小刊\nperiod: 2024-03\n---\n\n# 芯动态\n\n"


def articles(count: int) -> bytes:
    body = "".join(f"## 第{n}篇\n\n短文章正文。\n\n" for n in range(1, count + 1))
    return (FRONT + body).encode()


def table(columns: int, rows: int = 1, cell: str = "1") -> bytes:
    line = "|" + "|".join([cell] * columns) + "|\n"
    rule = "|" + "|".join(["---"] * columns) + "|\n"
    return (FRONT + "## 表格\n\n" + line + rule + line * rows).encode()


def refusal(data: bytes) -> str:
    with pytest.raises(NotAnIssue) as raised:
        parse_issue(data, filename="issue.md")
    return str(raised.value)


def test_an_issue_at_the_article_bound_is_read() -> None:
    """500 articles are an issue: every one is read."""
    assert len(parse_issue(articles(ARTICLES_LIMIT), filename="issue.md").articles) == 500


def test_more_articles_than_the_bound_are_refused() -> None:
    """501 articles are refused with the count, the bound and what to do."""
    assert refusal(articles(ARTICLES_LIMIT + 1)) == (
        "The file has 501 articles, more than the 500 one issue can have; "
        "import one issue at a time."
    )


@pytest.mark.timeout(20)
def test_a_table_of_two_hundred_thousand_columns_is_refused() -> None:
    """The probe's 200,000-column table (a 14 MB archive page) is refused, naming the article."""
    assert refusal(table(200_000)).startswith(
        "A table in “表格” has 200000 columns, more than the 50 an email can show"
    )


def test_a_table_at_the_column_bound_is_read_and_one_more_is_refused() -> None:
    """50 columns are a table; 51 are refused."""
    parsed = parse_issue(table(TABLE_COLUMNS_LIMIT), filename="issue.md")
    block = parsed.articles[0].blocks[0]
    assert block["type"] == "table" and len(block["header"]) == 50
    assert "has 51 columns" in refusal(table(TABLE_COLUMNS_LIMIT + 1))


def test_tables_with_too_many_cells_are_refused() -> None:
    """A narrow table with thousands of rows passes the column bound but not the cell bound."""
    rows = ARTICLE_CELLS_LIMIT // 10
    message = refusal(table(10, rows=rows))
    assert message.startswith(f"The tables in “表格” have {10 * (rows + 1)} cells, more than")


def test_an_absurd_cell_is_refused() -> None:
    """A cell of 5,000 characters is refused: cells hold numbers or a few words."""
    assert "has 5000 characters, more than 1000" in refusal(table(2, cell="字" * 5000))


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("zh", "文件中有 501 篇文章，超过了一期最多 500 篇的上限。请一次只导入一期。"),
        ("en", "The file has 501 articles, more than the 500 one issue can have"),
    ],
)
def test_the_upload_page_refuses_in_the_editors_language(
    client: FlaskClient, db: Session, lang: str, sentence: str
) -> None:
    """An editor uploading 501 articles reads the refusal on the page; nothing is stored."""
    make_editor(db)
    log_in(client)
    response = client.post(
        f"/editor/issues/import?lang={lang}",
        data={
            "csrf_token": csrf_token(client, "/editor/issues/"),
            "file": (io.BytesIO(articles(ARTICLES_LIMIT + 1)), "issue.md"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert sentence in response.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Issue)) == 0


def test_tables_holding_too_much_text_are_refused() -> None:
    """Cells each under their bound can still add up to a page of megabytes: refused."""
    message = refusal(table(2, rows=100, cell="字" * 600))
    assert message.startswith("The tables in “表格” hold 121200 characters, more than the 100000")


def test_a_long_running_text_is_still_read() -> None:
    """The bounds are on articles and tables: a long paragraph is read as before."""
    parsed = parse_issue((FRONT + "## 长文\n\n" + "很长的正文。" * 50_000 + "\n").encode())
    assert parsed.articles[0].chars == 300_000
