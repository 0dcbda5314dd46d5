"""The public web archive: ``/issues/<number>`` (contents) and ``/issues/<number>/<article>``.

This is where an email's "read more" and "view online" links lead. An issue becomes public
once it is ready to send; a draft is shown only to a logged-in editor (test emails and
previews link to it). Articles are addressed by their position in the whole issue.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import abort
from flask import render_template
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import selectinload

from core import db
from core.auth import current_editor
from issues.models import Issue
from issues.models import Section
from mailer.blocks import runs
from mailer.render import issue_line
from mailer.render import topic_labels
from mailer.segments import find_article
from mailer.segments import numbered

PUBLIC_STATUSES = ("ready", "sent")

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


@bp.get("/")
def index() -> str:
    query = select(Issue).where(Issue.status.in_(PUBLIC_STATUSES)).order_by(Issue.number.desc())
    issues = list(db.session().scalars(query))
    lines = {issue.number: issue_line(issue.number, issue.period, _locale()) for issue in issues}
    return render_template("web/archive/index.html", issues=issues, lines=lines)


@bp.get("/<int:number>")
def issue(number: int) -> str:
    found = _visible(number)
    return render_template(
        "web/archive/issue.html",
        issue=found,
        public=found.status in PUBLIC_STATUSES,
        line=issue_line(found.number, found.period, _locale()),
        parts=numbered(found),
        labels=topic_labels(_locale()),
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
        labels=topic_labels(_locale()),
        runs=runs,
    )
