"""Editor previews: every segment of an issue with its size, each viewable at two widths.

The email is shown in a sandboxed iframe, served by its own route with a strict Content
Security Policy of its own: it needs inline styles (as every email does) but may run no
script, load nothing from elsewhere but images, and submit no form.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask_babel import get_locale

from core import db
from core.auth import login_required
from issues import store as issues
from issues.archive import load_by_number
from issues.models import Issue
from mailer.render import BudgetExceeded
from mailer.render import RenderedSegment
from mailer.render import issue_line
from mailer.render import render_segment
from mailer.render import topic_names
from mailer.segments import Segment
from mailer.segments import SegmentError
from mailer.segments import all_segments
from mailer.segments import make_segment
from mailer.segments import sample_recipient

WIDTHS = {"desktop": 800, "phone": 375}
EMAIL_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src https: data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
        "sandbox",
    ]
)

bp = Blueprint("preview", __name__, url_prefix="/editor/previews")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@dataclass(frozen=True)
class Row:
    """One segment of the issue: its render, or why it could not be rendered."""

    segment: Segment
    topics: str
    rendered: RenderedSegment | None
    error: str | None


def _issue(number: int) -> Issue:
    issue = load_by_number(db.session(), number)
    if issue is None:
        abort(404)
    return issue


def _row(issue: Issue, segment: Segment) -> Row:
    topics = topic_names(segment.topics, str(get_locale() or "zh"))
    try:
        return Row(segment, topics, render_segment(issue, segment, current_app.config), None)
    except BudgetExceeded as error:
        return Row(segment, topics, None, str(error))


def _segment(number: int, topics: str, edition: str, locale: str) -> tuple[Issue, Row]:
    try:
        segment = make_segment(
            topics.split(","), edition, locale, list(current_app.config["TOPICS"])
        )
    except SegmentError:
        abort(404)
    issue = _issue(number)
    return issue, _row(issue, segment)


@bp.get("/")
@login_required()
def index() -> str:
    return render_template("web/preview/index.html", issues=issues.list_issues(db.session()))


@bp.get("/<int:number>")
@login_required()
def issue(number: int) -> str:
    found = _issue(number)
    rows = [_row(found, segment) for segment in all_segments(current_app.config["TOPICS"])]
    return render_template(
        "web/preview/issue.html",
        issue=found,
        line=issue_line(found.number, found.period, str(get_locale() or "zh")),
        rows=rows,
        budget=current_app.config["HTML_BUDGET_BYTES"],
    )


@bp.get("/<int:number>/<topics>/<edition>/<locale>")
@login_required()
def segment(number: int, topics: str, edition: str, locale: str) -> str:
    found, row = _segment(number, topics, edition, locale)
    width = request.args.get("width", "desktop")
    if width not in WIDTHS:
        width = "desktop"
    text = None
    if row.rendered is not None:
        text = row.rendered.personalise(sample_recipient(current_app.config, locale)).text
    return render_template(
        "web/preview/segment.html",
        issue=found,
        row=row,
        width=width,
        widths=WIDTHS,
        text=text,
        sample=sample_recipient(current_app.config, locale),
    )


@bp.get("/<int:number>/<topics>/<edition>/<locale>/email.html")
@login_required()
def email(number: int, topics: str, edition: str, locale: str) -> Response:
    _found, row = _segment(number, topics, edition, locale)
    if row.rendered is None:
        abort(404)
    html = row.rendered.personalise(sample_recipient(current_app.config, locale)).html
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response
