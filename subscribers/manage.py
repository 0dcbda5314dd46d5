"""Editors changing subscribers: one subscriber's details, and actions on a selection.

Every change is a POST with the CSRF token and writes a consent record naming the editor
and what changed. A bulk action is all or nothing: one transaction for the whole selection,
refused as a whole (nothing changed) when any selected row is gone or cannot take it.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import flash
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from core import db
from core.i18n import sentences
from core.views import safe_next
from subscribers import csvfile
from subscribers import service
from subscribers.admin import SUBSCRIBER
from subscribers.admin import _back
from subscribers.admin import _editor_consent
from subscribers.admin import _refused
from subscribers.admin import _subscriber_or_404
from subscribers.admin import bp
from subscribers.admin import export_name
from subscribers.admin import export_row
from subscribers.forms import ButtonForm
from subscribers.forms import ChoicesForm
from subscribers.models import Subscriber

# One selection is at most a few pages of the list; more is not a selection made by hand.
MAX_SELECTED = 500
LARGEST_ID = 2**31 - 1
LIST_PATH = "/editor/subscribers/"
ACTIONS = ("unsubscribe", "block", "export")


class EditForm(ChoicesForm):
    """An editor's change of a subscriber's name, topics, format and language."""


def edit_form(subscriber: Subscriber) -> EditForm:
    return EditForm(
        formdata=None,
        data={
            "name": subscriber.name or "",
            "topics": list(subscriber.topics),
            "format": subscriber.format,
            "language": subscriber.locale,
        },
    )


@bp.post(f"/{SUBSCRIBER}/edit")
def edit(subscriber_id: int) -> BaseResponse:
    subscriber = _subscriber_or_404(subscriber_id)
    form = EditForm()
    refused = _refused(subscriber, form)
    if refused is not None:
        return refused
    values: dict[str, Any] = {
        "name": form.name.data or None,
        "topics": tuple(form.topics.data or ()),
        "format": form.format.data,
        "locale": form.language.data,
    }
    with db.transaction() as db_session:
        changes = service.apply(subscriber, values)
        if changes:
            service.record_consent(db_session, subscriber, "edit", _editor_consent(), changes)
    flash(_("Saved.") if changes else _("Nothing has changed."), "info")
    return _back(subscriber)


def _selected_ids() -> list[int] | None:
    """The ticked subscribers' ids, or None if the form holds anything else."""
    values = request.form.getlist("selected")
    ids: list[int] = []
    for value in values:
        if not value.isascii() or not value.isdigit() or not 0 < int(value) <= LARGEST_ID:
            return None
        ids.append(int(value))
    return list(dict.fromkeys(ids))


@bp.post("/bulk")
def bulk() -> Response | BaseResponse:
    # Back to the list as it was (filters, order, page): a path on this site only.
    target = request.form.get("next", "")
    back = redirect(safe_next(target) if target.startswith(LIST_PATH) else url_for(".index"))
    form = ButtonForm()
    if not form.validate_on_submit():
        flash(_("The page had expired. Select the subscribers again and retry."), "error")
        return back
    action = request.form.get("action", "")
    ids = _selected_ids()
    if action not in ACTIONS or ids is None:
        flash(_("Choose what to do with the selected subscribers."), "error")
        return back
    if not ids:
        flash(_("Tick at least one subscriber in the list first."), "error")
        return back
    if action == "block" and request.form.get("sure") != "y":
        flash(_("Tick “They can never subscribe again” to block the selected addresses."), "error")
        return back
    if len(ids) > MAX_SELECTED:
        flash(_("Select at most %(count)s subscribers at a time.", count=MAX_SELECTED), "error")
        return back
    with db.transaction() as db_session:
        query = select(Subscriber).where(Subscriber.id.in_(ids)).order_by(Subscriber.id)
        rows = list(db_session.scalars(query.with_for_update()))
        if len(rows) != len(ids):
            flash(
                _("Some of the selected subscribers no longer exist. Nothing was changed."),
                "error",
            )
            return back
        if action == "export":
            return _export(rows)
        done = _apply(db_session, action, rows)
    if action == "unsubscribe":
        message = ngettext(
            "%(num)d subscriber unsubscribed.", "%(num)d subscribers unsubscribed.", done
        )
    else:
        message = ngettext("%(num)d address blocked.", "%(num)d addresses blocked.", done)
    left = len(ids) - done
    if left:
        message = sentences(
            message, ngettext("%(num)d needed no change.", "%(num)d needed no change.", left)
        )
    flash(message, "info")
    return back


def _apply(db_session: Any, action: str, rows: list[Subscriber]) -> int:
    """Unsubscribe or block every row, each with its consent record; how many changed."""
    consent = _editor_consent()
    done = 0
    for row in rows:
        if action == "unsubscribe":
            done += service.unsubscribe(db_session, row, consent)
        elif row.erased_at is None and not service.is_blocked(db_session, row):
            service.suppress(db_session, row.email, "manual", consent)
            done += 1
    return done


def _export(rows: list[Subscriber]) -> Response:
    kept = [row for row in rows if row.erased_at is None]
    body = "".join(csvfile.export_lines(export_row(row) for row in kept))
    filename = export_name("subscribers-selected")
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
