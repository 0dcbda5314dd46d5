"""The public web archive: ``/issues/<number>`` (contents) and ``/issues/<number>/<article>``.

This is where an email's "read more" and "view online" links lead. An issue becomes public
once it is ready to send; a draft is shown only to a logged-in editor (test emails and
previews link to it). Articles are addressed by their position in the whole issue.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import current_app
from flask import render_template
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import selectinload

from core import db
from core.auth import current_editor
from core.db import utcnow
from issues.models import Issue
from issues.models import Section
from mailer.blocks import runs
from mailer.render import issue_line
from mailer.render import topic_labels
from mailer.segments import ArticleContent
from mailer.segments import find_article
from mailer.segments import numbered

PUBLIC_STATUSES = ("ready", "sent")
# How many issues the feed lists, newest first.
FEED_LENGTH = 20
# Link previews (WeChat, Slack) show about this many characters of a description.
DESCRIPTION_LENGTH = 120
# Characters XML 1.0 forbids even escaped; an imported text could carry one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

bp = Blueprint("archive", __name__, url_prefix="/issues")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def load_by_number(db_session: Session, number: int) -> Issue | None:
    """The stored issue ``number`` with its sections and articles, or None."""
    query = (
        select(Issue)
        .where(Issue.number == number)
        .options(selectinload(Issue.sections).selectinload(Section.articles))
    )
    return db_session.scalars(query).one_or_none()


def _visible(number: int) -> Issue:
    """The issue, if this visitor may read it; 404 otherwise (a draft looks like no issue)."""
    issue = load_by_number(db.session(), number)
    if issue is None or (issue.status not in PUBLIC_STATUSES and current_editor() is None):
        abort(404)
    return issue


def _locale() -> str:
    return str(get_locale() or "zh")


def _public_issues(limit: int | None = None, contents: bool = False) -> list[Issue]:
    query = select(Issue).where(Issue.status.in_(PUBLIC_STATUSES)).order_by(Issue.number.desc())
    if contents:
        query = query.options(selectinload(Issue.sections).selectinload(Section.articles))
    return list(db.session().scalars(query.limit(limit)))


def atom_time(moment: datetime) -> str:
    """An RFC 3339 time in UTC, as Atom wants it (stored times are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shorten(text: str, length: int = DESCRIPTION_LENGTH) -> str:
    """One line of at most ``length`` characters, for a description or a feed summary."""
    line = " ".join(_NOT_XML.sub("", text).split())
    return line if len(line) <= length else line[: length - 1] + "…"


def _issue_description(issue: Issue) -> str:
    titles = [article.title for section in issue.sections for article in section.articles]
    return shorten("、".join(titles))


def _article_description(article: ArticleContent) -> str:
    if article.summary:
        return shorten(article.summary)
    texts = [block.get("text", "") for block in article.blocks if block.get("type") == "paragraph"]
    return shorten(" ".join(texts)) if any(texts) else shorten(article.title)


@bp.get("/")
def index() -> str:
    issues = _public_issues()
    lines = {issue.number: issue_line(issue.number, issue.period, _locale()) for issue in issues}
    return render_template("web/archive/index.html", issues=issues, lines=lines)


@bp.get("/feed.atom")
def feed() -> Response:
    """An Atom feed of the published issues, for feed readers (the site's language)."""
    issues = _public_issues(FEED_LENGTH, contents=True)
    updated = max((issue.updated_at for issue in issues), default=None, key=atom_time)
    body = render_template(
        "web/archive/feed.xml",
        issues=issues,
        lines={issue.number: issue_line(issue.number, issue.period, _locale()) for issue in issues},
        parts={issue.number: numbered(issue) for issue in issues},
        descriptions={issue.number: _issue_description(issue) for issue in issues},
        base_url=str(current_app.config["BASE_URL"]).rstrip("/"),
        clean=lambda text: _NOT_XML.sub("", text or ""),
        atom_time=atom_time,
        updated=atom_time(updated or utcnow()),
    )
    return Response(body, mimetype="application/atom+xml")


@bp.get("/<int:number>")
def issue(number: int) -> str:
    found = _visible(number)
    return render_template(
        "web/archive/issue.html",
        issue=found,
        public=found.status in PUBLIC_STATUSES,
        line=issue_line(found.number, found.period, _locale()),
        parts=numbered(found),
        labels=topic_labels(_locale(), current_app.config["TOPICS"]),
        description=_issue_description(found),
    )


@bp.get("/<int:number>/<int:article>")
def article(number: int, article: int) -> str:
    found = _visible(number)
    located = find_article(found, article)
    if located is None:
        abort(404)
    part, entry = located
    total = sum(len(section.articles) for section in found.sections)
    return render_template(
        "web/archive/article.html",
        issue=found,
        line=issue_line(found.number, found.period, _locale()),
        part=part,
        entry=entry,
        previous=article - 1 if article > 1 else None,
        next=article + 1 if article < total else None,
        labels=topic_labels(_locale(), current_app.config["TOPICS"]),
        runs=runs,
        description=_article_description(entry.article),
    )
