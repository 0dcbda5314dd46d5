"""Forms of the send pages, and the words and times those pages show.

Editors think in Beijing time; the database stores UTC. A time typed into a datetime-local
field is read in the configured zone (TIMEZONE) and handed on as an aware UTC datetime, and
every time a page shows is turned back into that zone, both by core.clock, the console's one clock.
The engine's refusals and pause reasons are message ids with values, translated here too.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import pgettext
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import RadioField
from wtforms import SelectField
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.widgets import DateTimeLocalInput

from campaigns.models import Campaign
from campaigns.progress import Failure
from core import clock as clock_
from core import topics
from core.i18n import N_
from subscribers.csvfile import safe_cell
from subscribers.service import AddressError
from subscribers.service import normalise

# A start time this far in the past is a typing mistake, not "now".
PAST_TOLERANCE = timedelta(minutes=5)
MAX_TEST_ADDRESSES = 5
ADDRESS_SEPARATORS = re.compile(r"[\s,;，；、]+")

STATUS_LABELS: dict[str, Any] = {
    "draft": _l("waiting for approval"),
    "scheduled": _l("scheduled"),
    "running": _l("sending"),
    "paused": _l("paused"),
    "done": _l("finished"),
    "cancelled": _l("cancelled"),
    "expired": _l("expired before it started"),
}
OUTCOME_LABELS: dict[str, Any] = {
    "sent": _l("delivered to the mail server"),
    "failed": _l("sending failed"),
    "bounced": _l("bounced"),
    "skipped": _l("not sent"),
    "retry": _l("will be tried again"),
    "queued": _l("waiting"),
    "sending": _l("sending"),
}
# What the engine (campaigns.control and campaigns.plan) refuses with, translated where shown.
PAUSED_BY = N_("Paused by %(email)s.")


class ButtonForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class SendForm(FlaskForm):
    when = RadioField(
        _l("When"),
        choices=[SelectChoice("now", _l("Send now")), SelectChoice("later", _l("Schedule"))],
        default="now",
    )
    send_at = StringField(_l("Start at"), widget=DateTimeLocalInput())
    not_after = StringField(_l("Do not start after (optional)"), widget=DateTimeLocalInput())
    confirm = BooleanField(
        _l("I have checked the number of readers"),
        validators=[DataRequired(message=_l("Tick the box to confirm who gets this issue."))],
    )


class SendTestForm(FlaskForm):
    addresses = StringField(
        _l("Send to (at most 5 addresses)"),
        validators=[
            DataRequired(message=_l("Enter at least one email address.")),
            Length(max=1300, message=_l("At most 5 addresses.")),
        ],
    )
    edition = SelectField(_l("Edition"), choices=[])

    def address_list(self) -> list[str] | None:
        """The addresses typed, normalised; None (with the reason on the field) if unusable."""
        typed = [part for part in ADDRESS_SEPARATORS.split(self.addresses.data or "") if part]
        if len(typed) > MAX_TEST_ADDRESSES:
            self.addresses.errors = [str(_l("At most 5 addresses."))]
            return None
        found: list[str] = []
        for address in typed:
            try:
                found.append(normalise(address))
            except AddressError:
                message = _l("“%(address)s” is not an email address. Check it and try again.")
                self.addresses.errors = [str(message) % {"address": address}]
                return None
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Schedule:
    """When a send starts (None: now) and the latest it may start, both UTC."""

    send_at: datetime | None
    not_after: datetime | None


def parse_local(text: str, zone: ZoneInfo) -> datetime:
    """A time typed in ``zone`` as an aware UTC datetime; ValueError if it is not one."""
    return clock_.parse_local(text, zone)


def schedule(form: SendForm, zone: ZoneInfo, now: datetime) -> Schedule | None:
    """The form's times, or None with a plain reason on the field that is wrong."""
    if form.when.data != "later":
        return Schedule(None, None)
    if not (form.send_at.data or "").strip():
        form.send_at.errors = [str(_l("Choose the day and time to start."))]
        return None
    send_at = _field_time(form.send_at, zone)
    typed_limit = bool((form.not_after.data or "").strip())
    not_after = _field_time(form.not_after, zone) if typed_limit else None
    if send_at is None or (typed_limit and not_after is None):
        return None
    if send_at < now - PAST_TOLERANCE and (not_after is None or not_after >= now):
        form.send_at.errors = [
            str(_l("This time has already passed. Choose a later time, or “Send now”."))
        ]
        return None
    return Schedule(send_at, not_after)


def _field_time(field: StringField, zone: ZoneInfo) -> datetime | None:
    try:
        return parse_local(field.data or "", zone)
    except ValueError:
        field.errors = [
            str(_l("Write the time as year-month-day hour:minute, like 2026-12-01 15:30."))
        ]
        return None


def zone() -> ZoneInfo:
    return clock_.zone()


def page_locale() -> str:
    return str(get_locale() or "zh")


# One clock for the whole console (core.clock); the names stay for this package's callers.
when = clock_.when
clock = clock_.clock


def translated(msgid: str, params: dict[str, Any] | None = None) -> str:
    """A message id of the engine in the page's language, with its values.

    A stored reason whose values do not fit its message (written by another version of the
    code) is shown as it was stored rather than failing the whole page.
    """
    try:
        return str(_(msgid, **(params or {})))
    except (KeyError, TypeError, ValueError):
        return msgid


def paused_reason(campaign: Campaign) -> str | None:
    reason = campaign.paused_reason
    if campaign.status != "paused" or not reason or "msgid" not in reason:
        return None
    return translated(str(reason["msgid"]), dict(reason.get("params") or {}))


def edition_label(segment: Any) -> str:
    """政策、数据 · 摘要版 · 中文: topics in the configured order, format, language."""
    order = list(current_app.config["TOPICS"])
    keys = sorted(segment.topics, key=lambda key: order.index(key) if key in order else len(order))
    names = ("、" if page_locale() == "zh" else ", ").join(topics.label(key, _) for key in keys)
    # In context: the other catalogues' "Full text" and "Digest" are shorter words.
    full = segment.format == "full"
    shape = pgettext("edition", "Full text") if full else pgettext("edition", "Digest")
    return f"{names} · {shape} · {'中文' if segment.locale == 'zh' else 'English'}"


def template_helpers() -> dict[str, Any]:
    """What the send pages' templates use to show statuses, outcomes, editions and times."""
    return {
        "status_label": lambda status: str(STATUS_LABELS.get(status, status)),
        "outcome_label": lambda status: str(OUTCOME_LABELS.get(status, status)),
        "when": when,
        "clock": clock,
        "edition_label": edition_label,
        "zone_name": clock_.zone_label(),
    }


# --- The report's file --------------------------------------------------------------------

FAILURE_COLUMNS = ("email", "outcome", "attempts", "smtp_code", "smtp_reply")


def failures_file(rows: Iterable[Failure], local_zone: ZoneInfo) -> Iterator[str]:
    """The failures as CSV, times in ``local_zone``; addresses and replies never run as
    spreadsheet formulas. It needs no request, so it can stream after the view returns."""
    header = (*FAILURE_COLUMNS, f"time ({local_zone.key})")
    cells = (
        (
            safe_cell(row.email),
            row.status,
            str(row.attempts),
            str(row.smtp_code or ""),
            safe_cell(row.smtp_reply),
            row.at.astimezone(local_zone).strftime("%Y-%m-%d %H:%M:%S") if row.at else "",
        )
        for row in rows
    )
    return csv_lines(header, cells)


def csv_lines(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> Iterator[str]:
    """CSV text, one chunk per line, header first; a BOM so that Excel reads it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    yield "\ufeff"
    for row in (header, *rows):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        yield buffer.getvalue()
