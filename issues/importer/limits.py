"""How large an issue may be: bounds that keep every render, preview and archive page quick.

An issue beyond them is refused at import with a sentence saying which bound it passed and
what to do, rather than stored and then making every page that draws it slow. The bounds
are far above any real issue: issue 361 has 34 articles, the longest 6,967 characters, and
its widest table 7 columns of 12 rows with cells of at most 48 characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.i18n import N_
from issues.importer.errors import NotAnIssue
from issues.importer.errors import shortened
from mailer.blocks import Block
from mailer.blocks import Table

# Articles in one issue: each is rendered into 28 editions; 500 keeps a preview of them all
# within seconds (about 40 renders of 500 articles), fifteen times a real issue.
ARTICLES_LIMIT = 500
# Columns of one table: wider does not fit an email or a phone, even scrolling sideways.
TABLE_COLUMNS_LIMIT = 50
# Cells in all tables of one article (50 columns × 100 rows): this bounds the size of an
# article's archive page, a few hundred kilobytes at most, whatever the tables hold.
ARTICLE_CELLS_LIMIT = 5_000
# Characters in one table cell: a cell holds a number or a few words.
CELL_CHARS_LIMIT = 1_000
# Characters in all tables of one article: with the cell bound this keeps an article's
# archive page under half a megabyte, whatever its tables hold. (Running text is not
# bounded here: the file's own size bounds it, and a long paragraph costs no more to draw.)
TABLE_CHARS_LIMIT = 100_000


class Measured(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def blocks(self) -> list[Block]: ...


def check_limits(articles: Sequence[Measured]) -> None:
    """Refuse, with NotAnIssue, an issue beyond one of the bounds above."""
    if len(articles) > ARTICLES_LIMIT:
        raise NotAnIssue(
            N_(
                "The file has %(count)s articles, more than the %(limit)s one issue can have; "
                "import one issue at a time."
            ),
            count=len(articles),
            limit=ARTICLES_LIMIT,
        )
    for article in articles:
        _check_article(article)


def _check_article(article: Measured) -> None:
    title = shortened(article.title, 40)
    tables = [block for block in article.blocks if block["type"] == "table"]
    for table in tables:
        _check_table(table, title)
    cells = sum(len(row) for table in tables for row in _rows(table))
    if cells > ARTICLE_CELLS_LIMIT:
        raise NotAnIssue(
            N_(
                "The tables in “%(title)s” have %(count)s cells, more than the %(limit)s one "
                "article can have; shorten the tables or split the article in two."
            ),
            title=title,
            count=cells,
            limit=ARTICLE_CELLS_LIMIT,
        )
    chars = sum(len(cell) for table in tables for row in _rows(table) for cell in row)
    if chars > TABLE_CHARS_LIMIT:
        raise NotAnIssue(
            N_(
                "The tables in “%(title)s” hold %(count)s characters, more than the %(limit)s "
                "one article can have; put long text below the tables, not in their cells."
            ),
            title=title,
            count=chars,
            limit=TABLE_CHARS_LIMIT,
        )


def _rows(table: Table) -> list[list[str]]:
    return [table["header"], *table["rows"]]


def _check_table(table: Table, title: str) -> None:
    rows = _rows(table)
    columns = max(len(row) for row in rows)
    if columns > TABLE_COLUMNS_LIMIT:
        raise NotAnIssue(
            N_(
                "A table in “%(title)s” has %(count)s columns, more than the %(limit)s an email "
                "can show; split it into narrower tables."
            ),
            title=title,
            count=columns,
            limit=TABLE_COLUMNS_LIMIT,
        )
    longest = max((len(cell) for row in rows for cell in row), default=0)
    if longest > CELL_CHARS_LIMIT:
        raise NotAnIssue(
            N_(
                "A table cell in “%(title)s” has %(count)s characters, more than %(limit)s; "
                "a cell holds a number or a few words, so put longer text below the table."
            ),
            title=title,
            count=longest,
            limit=CELL_CHARS_LIMIT,
        )
