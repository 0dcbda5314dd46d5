"""The public web archive: the contents page and each article (tables included), drafts kept
from the public, no inline script or style, both languages."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from issues import store as issues
from issues.models import Issue
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_segments import seed


def store(db: Session, status: str = "ready") -> None:
    issues.store_issue(db, seed())
    db.execute(select(Issue)).scalar_one().status = status
    db.commit()


def no_inline_code(page: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert " style=" not in page, "inline style attribute"


def test_contents_page_lists_every_article_by_section(client: FlaskClient, db: Session) -> None:
    """/issues/361 shows the six sections and all 34 article links in order."""
    store(db)
    response = client.get("/issues/361")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    links = re.findall(r'href="/issues/361/(\d+)"', page)
    assert [int(number) for number in links] == list(range(1, 35))
    for name in ("芯动态", "芯观点", "芯企业", "芯资讯", "芯政策", "芯伙伴"):
        assert f"<h2>{name}</h2>" in page
    assert "第361期 · 2023年2月" in page and 'href="/static/css/archive.css"' in page
    no_inline_code(page)


def test_article_page_shows_the_full_text_with_its_tables(client: FlaskClient, db: Session) -> None:
    """Article 28 (光刻机市场) is shown whole: every table in a scroll box, previous and next links."""
    store(db)
    page = client.get("/issues/361/28").get_data(as_text=True)
    article = seed().articles[27]
    assert f"<h1>{article.title}</h1>" in page
    tables = [block for block in article.blocks if block["type"] == "table"]
    assert page.count('<div class="table-scroll"') == len(tables) > 0
    assert page.count('<table class="data">') == len(tables)
    assert all(f"<td>{escape(cell)}</td>" in page for cell in tables[0]["rows"][0])
    assert 'rel="prev" href="/issues/361/27"' in page and 'rel="next" href="/issues/361/29"' in page
    assert "来源：芯思想" in page
    no_inline_code(page)


@pytest.mark.parametrize(
    "path", ["/issues/361/0", "/issues/361/35", "/issues/362", "/issues/362/1"]
)
def test_missing_issue_or_article_is_a_friendly_404(
    client: FlaskClient, db: Session, path: str
) -> None:
    """Numbers past the end are the site's 404 page, not an error."""
    store(db)
    response = client.get(path)
    assert response.status_code == 404
    assert "这个页面不存在" in response.get_data(as_text=True) or "不存在" in response.get_data(
        as_text=True
    )


def test_a_draft_is_hidden_from_the_public_but_shown_to_editors(
    client: FlaskClient, db: Session
) -> None:
    """A draft answers 404 to a reader; a logged-in editor sees it, marked as a draft."""
    store(db, status="draft")
    assert client.get("/issues/361").status_code == 404
    assert client.get("/issues/361/5").status_code == 404
    make_editor(db)
    log_in(client)
    page = client.get("/issues/361").get_data(as_text=True)
    assert "本期仍是草稿，只有编辑可以看到。" in page
    assert client.get("/issues/361/5").status_code == 200


def test_archive_speaks_english_on_request(client: FlaskClient, db: Session) -> None:
    """?lang=en switches the fixed words; the magazine's own text stays Chinese."""
    store(db, status="sent")
    page = client.get("/issues/361/20?lang=en").get_data(as_text=True)
    assert "Issue no. 361 · February 2023" in page and "Next article" in page
    assert "2022年中国集成电路进出口分析" in page
    index = client.get("/issues/?lang=en").get_data(as_text=True)
    assert 'href="/issues/361"' in index
