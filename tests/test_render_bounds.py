"""Rendering stays bounded whatever the issue's size (issue 13.4): fitting the budget takes a
fixed number of template renders, the seed shortens the same articles as before, and the
editor previews render each edition once per content version, not on every page view.

Renders are counted (a spy around ``mailer.render.render_pair``), never timed; the times are
printed by ``bench/bench_render.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

import mailer.render
from issues import store as issues
from issues.models import Article
from mailer.render import MAX_FIT_RENDERS
from mailer.render import BudgetExceeded
from mailer.render import render_segment
from mailer.segments import all_segments
from mailer.segments import make_segment
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

EVERYTHING_FULL = make_segment(TOPICS, "full", "zh", TOPICS)


@dataclass
class Piece:
    title: str
    body: str
    byline: str | None = None
    source: str | None = "示例芯闻"
    summary: str = ""
    topics: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return [{"type": "paragraph", "text": self.body}]


@dataclass
class Part:
    name: str
    articles: list[Piece]
    topics: list[str] = field(default_factory=list)


@dataclass
class Made:
    sections: list[Part]
    number: int = 999
    title: str = "天堂之芯"
    period: str | None = "2026-05"


def short_articles(count: int) -> Made:
    """``count`` short articles of a few dozen characters, all for every reader."""
    pieces = [Piece(f"第{n}篇", "短文章正文。" * (20 + n % 7)) for n in range(1, count + 1)]
    return Made([Part("芯动态", pieces)])


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The template renders made from now on, one entry (the template's name) each."""
    made: list[str] = []
    real: Callable[..., tuple[str, str]] = mailer.render.render_pair

    def counted(name: str, locale: str, **context: Any) -> tuple[str, str]:
        made.append(name)
        return real(name, locale, **context)

    monkeypatch.setattr(mailer.render, "render_pair", counted)
    return made


@pytest.mark.parametrize("count", [300, 1200])
def test_many_short_articles_over_any_budget_take_two_renders(
    renders: list[str], count: int
) -> None:
    """300 or 1,200 short articles cannot fit even as excerpts: two renders say so (the old
    loop rendered once per article, 1,201 times for 1,200)."""
    with pytest.raises(BudgetExceeded, match="even with every article shortened"):
        render_segment(short_articles(count), EVERYTHING_FULL, config())
    assert len(renders) == 2


@pytest.mark.parametrize("count", [300, 1200])
def test_many_longer_articles_that_fit_once_shortened_take_three_renders(
    renders: list[str], count: int
) -> None:
    """Articles of some 500 characters and a budget that fits once some are shortened: three
    renders (the old loop rendered once more for every article it shortened)."""
    pieces = [Piece(f"第{n}篇", "较长的文章正文。" * (60 + n % 7)) for n in range(1, count + 1)]
    issue = Made([Part("芯动态", pieces)])
    budget = render_segment(issue, EVERYTHING_FULL, config(HTML_BUDGET_BYTES=10**8)).html_bytes
    budget -= 20_000
    renders.clear()
    rendered = render_segment(issue, EVERYTHING_FULL, config(HTML_BUDGET_BYTES=budget))
    assert rendered.html_bytes <= budget
    assert 0 < len(rendered.shortened) < count
    assert len(renders) == 3 <= MAX_FIT_RENDERS


def test_an_issue_that_fits_takes_one_render(renders: list[str]) -> None:
    """Nothing to shorten: one render, and digests never need more."""
    render_segment(short_articles(20), EVERYTHING_FULL, config())
    render_segment(short_articles(20), make_segment(TOPICS, "digest", "en", TOPICS), config())
    assert len(renders) == 2


def test_the_seed_takes_at_most_three_renders_per_edition(renders: list[str]) -> None:
    """All 28 editions of the seed: one render each that fits, three for those that shorten
    (the old loop made 100 renders for the 28; this makes 52)."""
    shortening = 0
    for segment in all_segments(TOPICS):
        before = len(renders)
        rendered = render_segment(seed(), segment, config())
        assert len(renders) - before == (3 if rendered.shortened else 1), segment.key
        shortening += bool(rendered.shortened)
    assert len(renders) == 28 + 2 * shortening == 52


def test_the_seed_shortens_the_same_articles_as_before() -> None:
    """The heaviest edition excerpts eleven articles, longest first, and stays under the
    budget: the twelve the old loop chose but article 33, which fits in full since issue 12
    (paragraphs no longer repeat the container's style, so more text fits)."""
    rendered = render_segment(seed(), EVERYTHING_FULL, config())
    assert [item.number for item in rendered.shortened] == [
        3, 4, 20, 21, 22, 24, 27, 28, 30, 31, 32,
    ]  # fmt: skip
    assert rendered.html_bytes <= 90_000


def test_one_long_article_is_shortened_rather_than_many_short_ones() -> None:
    """When excerpting the one long article is enough, it is the only one excerpted."""
    pieces = [Piece(f"短{n}", "短文章正文。" * 20) for n in range(30)]
    pieces.insert(7, Piece("长文章", "很长的正文。" * 4_000))
    issue = Made([Part("芯动态", pieces)])
    whole = render_segment(issue, EVERYTHING_FULL, config(HTML_BUDGET_BYTES=10**7))
    budget = whole.html_bytes - 1_000
    rendered = render_segment(issue, EVERYTHING_FULL, config(HTML_BUDGET_BYTES=budget))
    assert [item.title for item in rendered.shortened] == ["长文章"]


# --- Previews: once per content version -----------------------------------------------------


def test_previews_render_each_edition_once_until_the_issue_changes(
    client: FlaskClient, db: Session, renders: list[str]
) -> None:
    """The list of 28 editions renders them once; viewing it again, an edition's page and its
    email render nothing; an edit makes a new version, rendered afresh on the next view."""
    stored = issues.store_issue(db, seed()).issue
    db.commit()
    make_editor(db)
    log_in(client)
    assert client.get("/editor/previews/361").status_code == 200
    first = len(renders)
    assert first == 52
    for path in (
        "/editor/previews/361",
        "/editor/previews/361/policy/digest/zh?width=phone",
        "/editor/previews/361/companies,data,policy/full/en/email.html",
    ):
        assert client.get(path).status_code == 200
    assert len(renders) == first
    article = db.query(Article).filter(Article.number == 3).one()
    show = f"/editor/issues/{stored.id}"
    saved = client.post(
        f"{show}/articles/{article.id}",
        data={"csrf_token": csrf_token(client, show), "title": "改过的标题", "summary": ""},
    )
    assert saved.status_code == 302
    page = client.get("/editor/previews/361/companies,data,policy/full/zh").get_data(as_text=True)
    assert len(renders) == first + 3 and "改过的标题" in page


def test_the_send_page_renders_each_edition_once_per_content_version(
    app: Flask, client: FlaskClient, db: Session, renders: list[str]
) -> None:
    """The "who gets what" page shows every edition's size; a second view renders nothing
    (it rendered all editions on every view, 4.7 s for a 500-article issue)."""
    from tests.campaign_helpers import add_readers
    from tests.campaign_helpers import ready_seed

    issue = ready_seed(app, db)
    add_readers(db, 30, app.config)
    make_editor(db, role="admin")
    log_in(client)
    assert client.get(f"/editor/campaigns/new/{issue.id}").status_code == 200
    first = len(renders)
    assert first > 0
    assert client.get(f"/editor/campaigns/new/{issue.id}").status_code == 200
    assert len(renders) == first
