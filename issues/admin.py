"""Editor pages for issues: the list, import with a preview before anything is stored, and the
issue page where editors re-tag articles and correct titles and summaries.

Between preview and confirmation the uploaded file waits in the database (a
``PendingUpload`` row, so any web process can serve the next step) under a random token
that is remembered only in the editor's signed session, and with the editor's id: the
bytes never travel in a cookie, and one editor cannot confirm another's upload.

Refusals and import warnings carry a message id and values; pages translate them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from typing import NamedTuple

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
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from core import auth
from core import db
from core import topics
from issues import import_review
from issues import store as issues
from issues import uploads
from issues.importer import NotAnIssue
from issues.importer import ParsedIssue
from issues.importer import ParseWarning
from issues.importer import decode
from mailer.blocks import block_counts
from mailer.blocks import runs

bp = Blueprint("issues", __name__, url_prefix="/editor/issues")

UPLOAD_KEY = "issue_upload"
# The article whose changes were just saved, so its page says so beside that article.
SAVED_KEY = "issue_article_saved"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")

# One name per issue status, on every page that shows one (issues, previews, sends): a ready
# issue is already on the website, so its name says so.
STATUS_LABELS = {
    "draft": _l("Draft"),
    "ready": _l("Ready, published to the website"),
    "sent": _l("Sent"),
}


# What importing a file changes in a stored draft's article, and where a skipped part stands.
CHANGE_WORDS = {
    "title": _l("title"),
    "summary": _l("summary"),
    "topics": _l("topics"),
    "text": _l("text"),
    "added": _l("new in the file"),
    "removed": _l("not in the file, so it is removed"),
}
SKIPPED_WORDS = {
    "before": _l("%(lines)s, before the first article (cover, table of contents)"),
    "between": _l("%(lines)s, between two articles"),
    "after": _l("%(lines)s, after the last article (back cover, notices)"),
}


class UploadForm(FlaskForm):
    file = FileField(
        _l("Issue file (plain text or Markdown)"),
        validators=[FileRequired(message=_l("Choose the issue file to import."))],
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_global(status_label, "issue_status_label")


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "topic_label": topic_label,
        "in_topic_order": in_topic_order,
        "status_label": status_label,
        "counts": block_counts,
        "translated": translated,
        "change_words": change_words,
        "runs": runs,
        "skipped_words": skipped_words,
    }


def change_words(fields: tuple[str, ...]) -> str:
    """What changes in an article, as a list in the page's language ("标题、摘要")."""
    return str(_(", ")).join(str(CHANGE_WORDS[name]) for name in fields)


def skipped_words(part: import_review.Skipped) -> str:
    """Where a part of the file that no article took stands, with its line numbers."""
    if part.first == part.last:
        lines = _("line %(number)s", number=part.first)
    else:
        lines = _("lines %(first)s–%(last)s", first=part.first, last=part.last)
    return str(SKIPPED_WORDS[part.where] % {"lines": lines})


def in_topic_order(keys: Iterable[str]) -> list[str]:
    """Topic keys in the configured order (政策、企业、数据); unknown keys last, by name."""
    order = list(current_app.config["TOPICS"])
    return sorted(keys, key=lambda key: (order.index(key) if key in order else len(order), key))


def topic_label(key: str) -> str:
    """A topic's name in the page's language (configured topics without a label show their key)."""
    return topics.label(key, _)


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def translated(message: issues.IssueError | NotAnIssue | ParseWarning | str) -> str:
    """A refusal or warning in the page's language.

    A plain string is a warning stored by an older import, before warnings kept their
    message id: it is shown as it is.
    """
    if isinstance(message, str):
        return message
    return str(_(message.msgid, **message.params))


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
    data = form.file.data.read(issues.ISSUE_FILE_MAX + 1)
    if len(data) > issues.ISSUE_FILE_MAX:
        abort(413)
    filename = Path(form.file.data.filename or "issue.txt").name
    try:
        issues.parse(data, filename, current_app.config)
    except NotAnIssue as error:
        form.file.errors = [_("This file was not imported: %(reason)s", reason=translated(error))]
        return _index_page(form, 400)
    with db.transaction() as db_session:
        _discard_upload(db_session)
        token = uploads.keep_upload(db_session, _editor_id(), filename, data)
    session[UPLOAD_KEY] = token
    return redirect(url_for("issues.preview"))


@bp.get("/import/preview")
@auth.login_required()
def preview() -> Any:
    pending = _load_upload()
    if pending is None:
        flash(_("The uploaded file has expired; choose it again."), "error")
        return redirect(url_for("issues.index"))
    refusal, action, existing = None, None, None
    try:
        action, existing = issues.plan(db.session(), pending.parsed)
    except issues.IssueError as error:
        refusal = translated(error)
    return render_template(
        "web/issues/preview.html",
        filename=pending.filename,
        parsed=pending.parsed,
        action=action,
        existing=existing,
        refusal=refusal,
        unsourced=import_review.unsourced(pending.parsed),
        skipped=import_review.skipped(pending.parsed, decode(pending.data)),
        changes=import_review.lost_changes(existing, pending.parsed)
        if existing is not None and action == "replaced"
        else [],
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
            # Taking the upload first makes a second confirm of it (a double click) find
            # nothing: on PostgreSQL it waits for this transaction, then deletes no row.
            claimed = uploads.drop_upload(db_session, pending.token, _editor_id())
            result = issues.store_issue(db_session, pending.parsed) if claimed else None
    except issues.IssueError as error:
        flash(translated(error), "error")
        return redirect(url_for("issues.preview"))
    session.pop(UPLOAD_KEY, None)
    if result is None:
        flash(_("The uploaded file has expired; choose it again."), "error")
        return redirect(url_for("issues.index"))
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
    with db.transaction() as db_session:
        _discard_upload(db_session)
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
    sent = issues.is_sent(db.session(), issue)
    saved = session.pop(SAVED_KEY, None)
    page = render_template(
        "web/issues/show.html",
        issue=issue,
        sent=sent,
        editable=issue.status == "draft" and not sent,
        warnings=issues.stored_warnings(issue),
        topics=current_app.config["TOPICS"],
        error=error,
        submitted=submitted or {},
        saved=saved if isinstance(saved, int) else None,
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
            article = issues.get_article(db_session, article_id, issue_id)
            # A sent issue's page has no topic boxes, and then ``retag`` is absent.
            if request.form.get("retag"):
                issues.retag_article(db_session, article.id, topics, current_app.config["TOPICS"])
            issues.correct_article(db_session, article.id, title=title, summary=summary)
    except issues.NotFound:
        abort(404)
    except issues.IssueError as error:
        submitted = {"topics": topics, "title": title, "summary": summary}
        return _issue_page(issue_id, (article_id, translated(error)), submitted)
    session[SAVED_KEY] = article.id
    return redirect(url_for("issues.show", issue_id=issue_id, _anchor=f"article-{article.id}"))


@bp.post("/<int:issue_id>/title")
@auth.login_required()
def edit_title(issue_id: int) -> Any:
    """Correct a draft issue's title; a refusal is shown beside the title field."""
    title = request.form.get("title", "")
    try:
        with db.transaction() as db_session:
            issues.correct_issue_title(db_session, issue_id, title)
    except issues.NotFound:
        abort(404)
    except issues.IssueError as error:
        return _issue_page(issue_id, (0, translated(error)), {"issue_title": title})
    flash(_("The title is saved."), "info")
    return redirect(url_for("issues.show", issue_id=issue_id))


@bp.post("/<int:issue_id>/status")
@auth.login_required()
def change_status(issue_id: int) -> Any:
    """Mark an issue ready (it appears in the public archive) or take it back to draft.

    Editors import, check, mark ready and send, as the people who use it expect; an
    association that wants a second pair of eyes turns on NEWSLETTER_SEND_APPROVAL.
    Both changes are seen by the public at once (marking ready publishes the issue to the
    website, back to draft takes it off), so each needs its confirmation page's button
    (``confirmed``); without it the editor is sent there.
    """
    status = request.form.get("status", "")
    if request.form.get("confirmed") != "yes":
        if status == "draft":
            return redirect(url_for("issues.confirm_draft", issue_id=issue_id), 303)
        if status == "ready":
            return redirect(url_for("issues.confirm_ready", issue_id=issue_id), 303)
    try:
        with db.transaction() as db_session:
            issue = issues.set_status(db_session, issue_id, status)
    except issues.NotFound:
        abort(404)
    except issues.IssueError as error:
        flash(translated(error), "error")
        return redirect(url_for("issues.show", issue_id=issue_id))
    if issue.status == "ready":
        message = _("Issue %(number)s is ready and published to the website.", number=issue.number)
    else:
        message = _("Issue %(number)s is a draft again and off the website.", number=issue.number)
    flash(message, "info")
    return redirect(url_for("issues.show", issue_id=issue_id))


@bp.get("/<int:issue_id>/draft")
@auth.login_required()
def confirm_draft(issue_id: int) -> Any:
    """The confirmation step before a ready issue leaves the public archive to be edited."""
    try:
        issue = issues.load_issue(db.session(), issue_id)
    except issues.NotFound:
        abort(404)
    if issue.status != "ready" or issues.is_sent(db.session(), issue):
        return redirect(url_for("issues.show", issue_id=issue_id))
    return render_template("web/issues/confirm_draft.html", issue=issue)


@bp.get("/<int:issue_id>/ready")
@auth.login_required()
def confirm_ready(issue_id: int) -> Any:
    """The confirmation step before a draft is marked ready, which publishes it to the website."""
    try:
        issue = issues.load_issue(db.session(), issue_id)
    except issues.NotFound:
        abort(404)
    if issue.status != "draft" or issues.is_sent(db.session(), issue):
        return redirect(url_for("issues.show", issue_id=issue_id))
    return render_template("web/issues/confirm_ready.html", issue=issue)


# --- Uploads waiting for confirmation -----------------------------------------------------


def _editor_id() -> int:
    editor = auth.current_editor()
    assert editor is not None, "only views behind login_required keep uploads"
    return editor.id


def _session_token() -> str | None:
    token = session.get(UPLOAD_KEY)
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


class Pending(NamedTuple):
    """The editor's upload that waits for confirmation, parsed again."""

    token: str
    filename: str
    data: bytes
    parsed: ParsedIssue


def _load_upload() -> Pending | None:
    """The editor's pending upload; None when there is none, it expired, or the session's
    token is another editor's."""
    token = _session_token()
    upload = uploads.find_upload(db.session(), token, _editor_id()) if token else None
    if token is None or upload is None:
        return None
    try:
        parsed = issues.parse(upload.data, upload.filename, current_app.config)
    except NotAnIssue:
        return None
    return Pending(token, upload.filename, upload.data, parsed)


def _discard_upload(db_session: Session) -> None:
    """Forget the editor's pending upload, in the session and in the database."""
    token = session.pop(UPLOAD_KEY, None)
    if isinstance(token, str):
        uploads.drop_upload(db_session, token, _editor_id())
