"""The editors' subscriber list: its search, filters and sort order, as one query.

"Blocked" is its own filter, apart from "unsubscribed": a blocked address (a manual block, a
hard bounce or a spam complaint) can never sign up or be imported again, an unsubscribed
reader can come back. The sort is one of the list's columns, either way, with the id to
break ties so that pages never share or skip a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import exists
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import type_coerce
from sqlalchemy.orm import Session
from wtforms import SelectField
from wtforms.validators import Optional

from subscribers.forms import FilterForm
from subscribers.forms import options
from subscribers.models import STATUSES
from subscribers.models import Subscriber
from subscribers.models import Suppression
from subscribers.service import BLOCKED_STATUSES
from subscribers.topics import LANGUAGE_LABELS
from subscribers.topics import STATUS_LABELS

# The list's filters and its order: the only query arguments its links carry on (any other
# key would reach url_for as one of its own keywords, such as _scheme or endpoint).
FILTERS = ("q", "status", "topic", "format", "language", "member", "sort")
# Column name in the URL -> what it sorts by. "-created" (newest first) unless chosen.
SORTS: dict[str, Any] = {
    "email": Subscriber.email,
    "name": Subscriber.name,
    "status": Subscriber.status,
    "format": Subscriber.format,
    "language": Subscriber.locale,
    "member": Subscriber.member,
    "created": Subscriber.created_at,
}
DEFAULT_SORT = "-created"


class ListForm(FilterForm):
    """The list's filters (subscribers.forms.FilterForm) with language, "blocked" and sort."""

    language = SelectField(_l("Language"), validators=[Optional()])
    sort = SelectField(_l("Sort by"), validators=[Optional()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        any_status = [("", _l("all"))]
        statuses = [(s, STATUS_LABELS[s]) for s in STATUSES if s not in BLOCKED_STATUSES]
        self.status.choices = options([*any_status, *statuses, ("blocked", _l("blocked"))])
        self.language.choices = options([("", _l("all")), *LANGUAGE_LABELS.items()])
        self.sort.choices = options(
            [(key, key) for name in SORTS for key in (name, f"-{name}")] + [("", "")]
        )


def blocked_clause() -> ColumnElement[bool]:
    """A subscriber whose address is blocked for good (by status or on the block list)."""
    on_list = exists().where(Suppression.email_hash == Subscriber.email_hash)
    return or_(Subscriber.status.in_(BLOCKED_STATUSES), on_list)


def filtered(form: ListForm) -> Select[Any]:
    """Subscribers matching the list's search and filters, in the chosen order."""
    query = select(Subscriber)
    if form.q.data:
        pattern = (
            "%" + form.q.data.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            or_(
                Subscriber.email.ilike(pattern, escape="\\"),
                Subscriber.name.ilike(pattern, escape="\\"),
                Subscriber.organisation.ilike(pattern, escape="\\"),
            )
        )
    if form.status.data == "blocked":
        query = query.where(blocked_clause())
    elif form.status.data:
        query = query.where(Subscriber.status == form.status.data, ~blocked_clause())
    if form.topic.data:
        # Topics are stored as "a,b,c"; framing both sides with commas matches whole keys only.
        stored = "," + type_coerce(Subscriber.topics, String) + ","
        query = query.where(stored.like(f"%,{form.topic.data},%"))
    if form.format.data:
        query = query.where(Subscriber.format == form.format.data)
    if form.language.data:
        query = query.where(Subscriber.locale == form.language.data)
    if form.member.data:
        query = query.where(Subscriber.member.is_(form.member.data == "yes"))
    return query.order_by(*order(form.sort.data or DEFAULT_SORT))


def order(sort: str) -> list[Any]:
    name = sort.removeprefix("-")
    column = SORTS.get(name, Subscriber.created_at)
    if sort.startswith("-"):
        return [column.desc().nulls_last(), Subscriber.id.desc()]
    return [column.asc().nulls_last(), Subscriber.id.asc()]


def sort_link(current: str, name: str) -> tuple[str, str]:
    """The sort a column heading links to (its reverse when it is the current one) and the
    arrow it shows: ("-email", "↑") when the list is sorted by email ascending."""
    current = current or DEFAULT_SORT
    if current == name:
        return f"-{name}", "↑"
    if current == f"-{name}":
        return name, "↓"
    return (f"-{name}" if name in ("created", "member") else name), ""


def blocked_ids(db_session: Session, rows: Sequence[Subscriber]) -> set[int]:
    """Which of ``rows`` are blocked, in one query."""
    ids = [row.id for row in rows]
    if not ids:
        return set()
    query = select(Subscriber.id).where(Subscriber.id.in_(ids), blocked_clause())
    return set(db_session.scalars(query))
