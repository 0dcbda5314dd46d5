"""Editor previews: every segment of an issue with its size, each viewable at two widths.

The email is shown in a sandboxed iframe, served by its own route with a strict Content
Security Policy of its own: it needs inline styles (as every email does) but may run no
script, load nothing from elsewhere but images, and submit no form.

Each edition is rendered once per web process and kept (``Renders``), keyed by the issue's
content version, so the list of 28 editions, an edition's page and its iframe do not render
again on every view; any edit makes a new version, which is rendered afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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

# Editions kept per web process, least recently viewed dropped first: the 28 editions of a
# few issues, each at most the HTML budget plus its text part (some 25 MB in all).
RENDERS_KEPT = 128
# The settings a render depends on besides the issue and the edition.
RENDER_SETTINGS = ("HTML_BUDGET_BYTES", "BASE_URL", "MAIL_FROM_NAME")

bp = Blueprint("preview", __name__, url_prefix="/editor/previews")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.extensions["issues.preview_renders"] = Renders(RENDERS_KEPT)


class Renders:
    """Finished renders (or the budget refusal) by key, at most ``size``, safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, RenderedSegment | str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> RenderedSegment | str | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: Hashable, value: RenderedSegment | str) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def render_key(issue: Issue, segment: Segment, config: Mapping[str, Any]) -> Hashable:
    """What a render depends on: the issue's content version, the edition and the settings."""
    settings = tuple(str(config[name]) for name in RENDER_SETTINGS)
    return (issue.id, issue.version, issue.content_hash, segment, settings)


def rendered(issue: Issue, segment: Segment) -> RenderedSegment | str:
    """The edition ``segment`` of ``issue``, rendered once per content version; or, when it
    cannot fit the size budget, the sentence saying so."""
    renders: Renders = current_app.extensions["issues.preview_renders"]
    key = render_key(issue, segment, current_app.config)
    found = renders.get(key)
    if found is None:
        try:
            found = render_segment(issue, segment, current_app.config)
        except BudgetExceeded as error:
            found = str(error)
        renders.put(key, found)
    return found


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
    # Keys are sorted by name in a segment; topic_names puts them in the configured order.
    topics = topic_names(segment.topics, str(get_locale() or "zh"), current_app.config["TOPICS"])
    found = rendered(issue, segment)
    if isinstance(found, str):
        return Row(segment, topics, None, found)
    return Row(segment, topics, found, None)


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
