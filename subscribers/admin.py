"""The editor's subscriber pages: list, history, member flag, unsubscribe, erase, import, export.

Administrators only. Views parse the form, call subscribers.service or subscribers.imports,
commit, and redirect back with a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from kombu.exceptions import OperationalError
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from core import auth
from core import clock
from core import db
from core.db import utcnow
from subscribers import csvfile
from subscribers import history
from subscribers import imports
from subscribers import listing
from subscribers import service
from subscribers import tasks
from subscribers import topics
from subscribers.forms import ButtonForm
from subscribers.forms import EraseForm
from subscribers.forms import ImportForm
from subscribers.forms import MemberForm
from subscribers.listing import FILTERS
from subscribers.listing import ListForm
from subscribers.listing import filtered
from subscribers.models import ConsentEvent
from subscribers.models import ImportJob
from subscribers.models import Subscriber

bp = Blueprint("subscribers_admin", __name__, url_prefix="/editor/subscribers")
PAGE_SIZE = 50
# Ids beyond the databases' INTEGER range are not found, rather than a database error.
SUBSCRIBER = "<int(max=2147483647):subscriber_id>"
JOB = "<int(max=2147483647):job_id>"
Page = str | BaseResponse | tuple[str, int]

CSV_ERRORS: dict[str, Any] = {
    "encoding": _l(
        "The file is neither UTF-8 nor GB18030 text. Save it as “CSV UTF-8” and try again."
    ),
    "empty": _l("The file is empty."),
    "no_email_column": _l("The first line must name the columns, and one of them must be “email”."),
    "duplicate_column": _l(
        "The columns “%(first)s” and “%(second)s” are the same column. Delete one of them and"
        " import the file again."
    ),
    "unreadable": _l(
        "Line %(line)s cannot be read: a cell there is far too long, perhaps because a quotation"
        " mark is not closed."
    ),
}
ROW_ERRORS: dict[str, Any] = {
    "email": _l("not an email address: “%(value)s”"),
    "duplicate": _l("the same address as line %(value)s"),
    "topic": _l("unknown topic “%(value)s”"),
    "format": _l("unknown format “%(value)s” (use full or digest)"),
    "language": _l("unknown language “%(value)s” (use zh or en)"),
    "member": _l("member must be yes or no, not “%(value)s”"),
    "too_long": _l("the “%(value)s” column is too long"),
    "control": _l("the “%(value)s” column contains line breaks or control characters"),
}


SKIPPED: dict[str, Any] = {
    "existing": _l("already on the list, left as it was"),
    "blocked": _l("unsubscribed, bounced or blocked: not added back"),
}


@bp.before_request
@auth.login_required("admin")
def _administrators_only() -> None:
    """Every page here is for administrators; the decorator answers for anyone else."""
    return None


def _editor_consent() -> service.Consent:
    editor = auth.current_editor()
    return service.Consent(source="editor", actor=editor.email if editor else None)


def _subscriber_or_404(subscriber_id: int) -> Subscriber:
    subscriber = db.session().get(Subscriber, subscriber_id)
    if subscriber is None:
        abort(404)
    return subscriber


# --- list and export ---------------------------------------------------------------------


def _filter_form() -> ListForm:
    form = ListForm(request.args)
    if not form.validate():
        # Unknown filter values (an edited URL) are dropped rather than answered with an error.
        for name in FILTERS:
            if getattr(form, name).errors:
                getattr(form, name).data = ""
    return form


@bp.get("/")
def index() -> Page:
    form = _filter_form()
    query = filtered(form)
    db_session = db.session()
    total = db_session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(((total or 0) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    rows = db_session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    arguments = {name: getattr(form, name).data for name in FILTERS if getattr(form, name).data}
    return render_template(
        "web/subscribers_admin/list.html",
        form=form,
        rows=rows,
        total=total or 0,
        page=page,
        pages=pages,
        arguments=arguments,
        topics=topics,
        blocked=listing.blocked_ids(db_session, rows),
        sort_link=lambda name: _sort_link(form, arguments, name),
        bulk=ButtonForm(),
    )


def _sort_link(form: ListForm, arguments: dict[str, Any], name: str) -> tuple[str, str]:
    """The address a column heading links to (the list sorted by it) and its arrow."""
    sort, arrow = listing.sort_link(form.sort.data or "", name)
    others = {key: value for key, value in arguments.items() if key != "sort"}
    return url_for(".index", sort=sort, **others), arrow


@bp.get("/export.csv")
def export() -> Response:
    """The filtered list as CSV (same columns as the import, plus status), streamed."""
    query = filtered(_filter_form()).where(Subscriber.erased_at.is_(None))

    def lines() -> Iterator[str]:
        result = db.session().scalars(query.execution_options(yield_per=2000))
        yield from csvfile.export_lines(export_row(row) for row in result)

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{export_name("subscribers")}"'},
    )


def export_name(prefix: str) -> str:
    """subscribers-20261204-0430.csv: the editor's date and time (core.clock), not UTC's."""
    return f"{prefix}-{utcnow().astimezone(clock.zone()):%Y%m%d-%H%M}.csv"


def export_row(row: Subscriber) -> tuple[str, ...]:
    return (
        csvfile.safe_cell(row.email),
        csvfile.safe_cell(row.name),
        csvfile.safe_cell(row.organisation),
        ";".join(row.topics),
        row.format,
        row.locale,
        "yes" if row.member else "no",
        row.status,
    )


# --- one subscriber ----------------------------------------------------------------------


@bp.get(f"/{SUBSCRIBER}")
def detail(subscriber_id: int) -> Page:
    subscriber = _subscriber_or_404(subscriber_id)
    events = db.session().scalars(
        select(ConsentEvent)
        .where(ConsentEvent.subscriber_id == subscriber.id)
        .order_by(ConsentEvent.created_at.desc(), ConsentEvent.id.desc())
    )
    member_form = MemberForm(
        data={"member": subscriber.member, "organisation": subscriber.organisation}
    )
    return render_template(
        "web/subscribers_admin/detail.html",
        subscriber=subscriber,
        history=history.entries(events),
        member_form=member_form,
        edit_form=manage.edit_form(subscriber),
        erase_form=EraseForm(),
        button=ButtonForm(),
        suppressed=service.is_blocked(db.session(), subscriber),
        topics=topics,
    )


def _back(subscriber: Subscriber) -> BaseResponse:
    return redirect(url_for(".detail", subscriber_id=subscriber.id))


def _form_errors(form: Any) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "error")


def _refused(subscriber: Subscriber, form: Any) -> BaseResponse | None:
    """Back to the subscriber, saying why, when the form must not change them: their data is
    erased, or the form is not valid. None when the change may go ahead."""
    if subscriber.erased_at is not None:
        flash(_("This subscriber's data is already erased."), "info")
        return _back(subscriber)
    if not form.validate_on_submit():
        _form_errors(form)
        return _back(subscriber)
    return None


@bp.post(f"/{SUBSCRIBER}/member")
def member(subscriber_id: int) -> BaseResponse:
    subscriber = _subscriber_or_404(subscriber_id)
    form = MemberForm()
    refused = _refused(subscriber, form)
    if refused is not None:
        return refused
    with db.transaction() as db_session:
        changes = service.set_member(
            db_session, subscriber, form.member.data, form.organisation.data, _editor_consent()
        )
    flash(_("Saved.") if changes else _("Nothing has changed."), "info")
    return _back(subscriber)


@bp.post(f"/{SUBSCRIBER}/unsubscribe")
def unsubscribe(subscriber_id: int) -> BaseResponse:
    subscriber = _subscriber_or_404(subscriber_id)
    with db.transaction() as db_session:
        done = service.unsubscribe(db_session, subscriber, _editor_consent())
    flash(_("Unsubscribed.") if done else _("This subscriber was not receiving mail."), "info")
    return _back(subscriber)


@bp.post(f"/{SUBSCRIBER}/suppress")
def suppress(subscriber_id: int) -> BaseResponse:
    subscriber = _subscriber_or_404(subscriber_id)
    if subscriber.erased_at is None:
        with db.transaction() as db_session:
            service.suppress(db_session, subscriber.email, "manual", _editor_consent())
        flash(_("The address is blocked: no signup or import can add it again."), "info")
    return _back(subscriber)


@bp.post(f"/{SUBSCRIBER}/erase")
def erase(subscriber_id: int) -> BaseResponse:
    subscriber = _subscriber_or_404(subscriber_id)
    form = EraseForm()
    if subscriber.erased_at is not None:
        flash(_("This subscriber's data is already erased."), "info")
    elif not form.validate_on_submit():
        _form_errors(form)
    else:
        with db.transaction() as db_session:
            service.erase(db_session, subscriber, _editor_consent(), block=form.block.data)
        flash(_("The personal data is erased; the history is kept without it."), "info")
    return _back(subscriber)


# --- import ------------------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
def import_form() -> Page:
    limit = int(current_app.config["IMPORT_MAX_BYTES"])
    form = ImportForm()
    if form.validate_on_submit():
        job = _create_job(form, limit)
        if job is not None:
            return redirect(url_for(".import_status", job_id=job.id))
    return render_template(
        "web/subscribers_admin/import.html",
        form=form,
        topics=topics,
        chinese_topics=csvfile.chinese_topic_names(topics.topic_keys()),
    )


@bp.get("/import/template.csv")
def import_template() -> Response:
    """A CSV to fill in, with the column names in the page's language and one example line."""
    body = "".join(csvfile.template_lines(str(get_locale() or "zh"), topics.topic_keys()))
    name = "订阅者导入模板.csv" if str(get_locale()) == "zh" else "subscribers-template.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="subscribers-template.csv"; '
            f"filename*=UTF-8''{quote(name)}"
        },
    )


def _create_job(form: ImportForm, limit: int) -> ImportJob | None:
    upload = form.file.data
    data = upload.read(limit + 1)
    if len(data) > limit:
        form.file.errors.append(_("The file is larger than %(size)s MB.", size=limit // 1_000_000))
        return None
    try:
        text = csvfile.decode(data)
        csvfile.header(text)
        total_rows = csvfile.count_rows(text)
    except csvfile.CsvError as error:
        form.file.errors.append(csv_error_text(error))
        return None
    editor = auth.current_editor()
    with db.transaction() as db_session:
        service.discard_stale_previews(db_session)
        job = ImportJob(
            created_by=editor.email if editor else "",
            filename=(upload.filename or "upload.csv")[:200],
            content=text,
            consent_source=form.consent_source.data,
            total_rows=total_rows,
        )
        db_session.add(job)
    return job


def csv_error_text(error: csvfile.CsvError) -> str:
    columns = dict(zip(("first", "second"), error.columns, strict=False))
    return str(CSV_ERRORS[error.code]) % {"line": error.detail, **columns}


def row_error_text(error: csvfile.RowError) -> str:
    return str(ROW_ERRORS[error.code]) % {"value": error.value}


def skipped_text(code: str, value: str) -> str:
    """Why a line of a finished import was skipped, in the page's language."""
    if code in SKIPPED:
        return str(SKIPPED[code])
    return str(ROW_ERRORS.get(code, code)) % {"value": value}


@bp.get(f"/import/{JOB}")
def import_status(job_id: int) -> Page:
    job = db.session().get(ImportJob, job_id) or abort(404)
    preview = None
    if job.status == "preview":
        preview = imports.preview(db.session(), job.content, topics.topic_keys())
    return render_template(
        "web/subscribers_admin/import_status.html",
        job=job,
        preview=preview,
        button=ButtonForm(),
        row_error_text=row_error_text,
        skipped_text=skipped_text,
        topics=topics,
    )


@bp.post(f"/import/{JOB}/run")
def import_run(job_id: int) -> BaseResponse:
    with db.transaction() as db_session:
        job = db_session.get(ImportJob, job_id) or abort(404)
        starting = job.status == "preview"
        if starting:
            job.status = "queued"
    if starting:
        _start_import(job_id)
    return redirect(url_for(".import_status", job_id=job_id))


def _start_import(job_id: int) -> None:
    """Hand the job to a worker; if the broker is down, put it back to preview and say so."""
    try:
        tasks.import_csv.delay(job_id)
    except OperationalError:
        with db.transaction() as db_session:
            job = db_session.get(ImportJob, job_id)
            if job is not None and job.status == "queued" and job.processed_rows == 0:
                job.status = "preview"
        flash(
            _(
                "The import could not start: the task queue cannot be reached. Try again in a minute."
            ),
            "error",
        )


@bp.post(f"/import/{JOB}/discard")
def import_discard(job_id: int) -> BaseResponse:
    with db.transaction() as db_session:
        job = db_session.get(ImportJob, job_id) or abort(404)
        if job.status == "preview":
            db_session.delete(job)
            flash(_("The upload is discarded; nothing was imported."), "info")
    return redirect(url_for(".import_form"))


# The edit and bulk actions are on this blueprint too, in their own module.
from subscribers import manage  # noqa: E402
