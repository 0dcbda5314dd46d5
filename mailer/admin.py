"""Editor pages for issues: the list, import with a preview before anything is stored, and the
issue page where editors re-tag articles and correct titles and summaries.

Between preview and confirmation the uploaded file waits on the server, in the instance
folder, under a random name that is remembered only in the editor's signed session and
that carries the editor's id: the bytes never travel in a cookie, and one editor cannot
confirm another's upload.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from flask_wtf.file import FileRequired
from werkzeug.wrappers import Response

from core import auth
from core import db
from mailer import issues
from mailer.blocks import block_counts
from mailer.importer import NotAnIssue
from mailer.importer import ParsedIssue

bp = Blueprint("issues", __name__, url_prefix="/editor/issues")

# An issue file is text of a few hundred kilobytes; anything far larger is not an issue.
ISSUE_FILE_MAX = 5 * 1024 * 1024
# Room for the multipart envelope and the other fields around an uploaded file.
FORM_OVERHEAD = 64 * 1024
# An upload not confirmed within this many seconds is forgotten.
UPLOAD_MAX_AGE = 3600
UPLOAD_KEY = "issue_upload"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")

TOPIC_LABELS = {"policy": _l("Policy"), "companies": _l("Companies"), "data": _l("Data")}
STATUS_LABELS = {"draft": _l("draft"), "ready": _l("ready to send"), "sent": _l("sent")}


class UploadForm(FlaskForm):
    file = FileField(
        _l("Issue file (plain text or Markdown)"),
        validators=[FileRequired(message=_l("Choose the issue file to import."))],
    )


def init_app(app: Flask) -> None:
    if not app.config.get("MAX_CONTENT_LENGTH"):
        # One limit for every request, so it must let through the largest upload any page
        # takes (the subscriber CSV import's, when configured); each view checks its own.
        largest = max(ISSUE_FILE_MAX, int(app.config.get("IMPORT_MAX_BYTES") or 0))
        app.config["MAX_CONTENT_LENGTH"] = largest + FORM_OVERHEAD
    app.register_blueprint(bp)
    nav: list[tuple[str, Any, str]] = app.jinja_env.globals["editor_nav"]  # type: ignore[assignment]
    nav.append(("issues.index", _l("Issues"), "editor"))


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"topic_label": topic_label, "status_label": status_label, "counts": block_counts}


def topic_label(key: str) -> str:
    """A topic's name in the page's language (configured topics without a label show their key)."""
    return str(TOPIC_LABELS.get(key, key))


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def translated(error: issues.IssueError) -> str:
    """The refusal in the page's language."""
    return str(_(error.msgid, **error.params))


# --- Pages --------------------------------------------------------------------------------


@bp.get("/")
@auth.login_required()
def index() -> tuple[str, int]:
    return _index_page(UploadForm())


def _index_page(form: UploadForm, status: int = 200) -> tuple[str, int]:
    rows = issues.list_issues(db.session())
    return render_template("web/issues/index.html", form=form, rows=rows), status


@bp.post("/import")
@auth.login_required()
def upload() -> Any:
    form = UploadForm()
    if not form.validate_on_submit():
        return _index_page(form, 400)
    data = form.file.data.read(ISSUE_FILE_MAX + 1)
    if len(data) > ISSUE_FILE_MAX:
        abort(413)
    filename = Path(form.file.data.filename or "issue.txt").name
    try:
        issues.parse(data, filename, current_app.config)
    except NotAnIssue as error:
        form.file.errors = [_("This file was not imported: %(reason)s", reason=str(error))]
        return _index_page(form, 400)
    _discard_upload()
    session[UPLOAD_KEY] = {"token": _save_upload(data), "filename": filename}
    return redirect(url_for("issues.preview"))


@bp.get("/import/preview")
@auth.login_required()
def preview() -> Any:
    pending = _load_upload()
    if pending is None:
        flash(_("The uploaded file has expired; choose it again."), "error")
        return redirect(url_for("issues.index"))
    filename, parsed = pending
    refusal, action, existing = None, None, None
    try:
        action, existing = issues.plan(db.session(), parsed)
    except issues.IssueError as error:
        refusal = translated(error)
    return render_template(
        "web/issues/preview.html",
        filename=filename,
        parsed=parsed,
        action=action,
        existing=existing,
        refusal=refusal,
    )


@bp.post("/import/confirm")
@auth.login_required()
def confirm() -> Response:
    pending = _load_upload()
    if pending is None:
        flash(_("The uploaded file has expired; choose it again."), "error")
        return redirect(url_for("issues.index"))
    try:
        with db.transaction() as db_session:
            result = issues.store_issue(db_session, pending[1])
    except issues.IssueError as error:
        flash(translated(error), "error")
        return redirect(url_for("issues.preview"))
    _discard_upload()
    flash(_outcome(result), "info")
    return redirect(url_for("issues.show", issue_id=result.issue.id))


def _outcome(result: issues.StoreResult) -> str:
    number = result.issue.number
    if result.action == "created":
        message = _("Issue %(number)s is stored as a draft.", number=number)
    elif result.action == "replaced":
        message = _("Draft issue %(number)s is replaced by the new file.", number=number)
    else:
        message = _(
            "This file was already imported as issue %(number)s; nothing changed.", number=number
        )
    return str(message)


@bp.post("/import/cancel")
@auth.login_required()
def cancel() -> Response:
    _discard_upload()
    flash(_("The import was cancelled; nothing was stored."), "info")
    return redirect(url_for("issues.index"))


@bp.get("/<int:issue_id>")
@auth.login_required()
def show(issue_id: int) -> Any:
    return _issue_page(issue_id)


def _issue_page(
    issue_id: int,
    error: tuple[int, str] | None = None,
    submitted: dict[str, Any] | None = None,
) -> Any:
    try:
        issue = issues.load_issue(db.session(), issue_id)
    except issues.NotFound:
        abort(404)
    page = render_template(
        "web/issues/show.html",
        issue=issue,
        topics=current_app.config["TOPICS"],
        error=error,
        submitted=submitted or {},
    )
    return page, 400 if error else 200


@bp.post("/<int:issue_id>/articles/<int:article_id>")
@auth.login_required()
def edit_article(issue_id: int, article_id: int) -> Any:
    """Re-tag an article and correct its title and summary, all or nothing."""
    topics = request.form.getlist("topics")
    title = request.form.get("title", "")
    summary = request.form.get("summary", "")
    try:
        with db.transaction() as db_session:
            article = issues.find_article(db_session, article_id, issue_id)
            # A sent issue's page has no topic boxes, and then ``retag`` is absent.
            if request.form.get("retag"):
                issues.retag_article(db_session, article.id, topics, current_app.config["TOPICS"])
            issues.correct_article(db_session, article.id, title=title, summary=summary)
    except issues.NotFound:
        abort(404)
    except issues.IssueError as error:
        submitted = {"topics": topics, "title": title, "summary": summary}
        return _issue_page(issue_id, (article_id, translated(error)), submitted)
    flash(_("Article %(number)s is saved.", number=article.number), "info")
    return redirect(url_for("issues.show", issue_id=issue_id, _anchor=f"article-{article.id}"))


# --- Uploads waiting for confirmation -----------------------------------------------------


def _upload_folder() -> Path:
    folder = Path(current_app.instance_path) / "import-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _upload_path(token: str) -> Path:
    editor = auth.current_editor()
    assert editor is not None
    return _upload_folder() / f"{editor.id}-{token}.upload"


def _save_upload(data: bytes) -> str:
    """Keep ``data`` under a fresh random name, and forget uploads nobody confirmed."""
    cutoff = time.time() - UPLOAD_MAX_AGE
    for old in _upload_folder().glob("*.upload"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(24)
    _upload_path(token).write_bytes(data)
    return token


def _load_upload() -> tuple[str, ParsedIssue] | None:
    """The editor's pending upload, parsed again; None when there is none or it expired."""
    pending = session.get(UPLOAD_KEY)
    if not isinstance(pending, dict) or not _TOKEN.fullmatch(str(pending.get("token"))):
        return None
    path = _upload_path(pending["token"])
    try:
        if path.stat().st_mtime < time.time() - UPLOAD_MAX_AGE:
            return None
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    filename = str(pending.get("filename", "issue.txt"))
    try:
        return filename, issues.parse(data, filename, current_app.config)
    except NotAnIssue:
        return None


def _discard_upload() -> None:
    pending = session.pop(UPLOAD_KEY, None)
    if isinstance(pending, dict) and _TOKEN.fullmatch(str(pending.get("token"))):
        _upload_path(pending["token"]).unlink(missing_ok=True)
