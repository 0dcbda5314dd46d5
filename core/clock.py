"""The editors' clock: the one place a stored time becomes a time an editor reads, and back.

The database keeps aware UTC datetimes. Every time the console shows is turned into the
configured zone (``TIMEZONE``, Asia/Shanghai unless set: labelled 北京时间 / Beijing time)
here, and every time an editor types is read in that zone here. Templates get ``clock`` (the
time alone, for tables that name the zone once), ``when`` (the time with the zone's name),
``zone_label`` and ``field_time`` (a value for a datetime-local field) as Jinja globals, and
``clock`` / ``when`` as filters too.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import Flask
from flask import current_app
from flask import has_request_context
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# What a datetime-local field sends (with or without seconds), and the same with a space,
# as typed into browsers that show the field as plain text.
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
# The keys under which China's zone goes; all of them read as Beijing time.
BEIJING = ("Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC")
BEIJING_TIME = _l("Beijing time")


def zone() -> ZoneInfo:
    """The editors' zone (TIMEZONE, checked when the configuration was loaded)."""
    return ZoneInfo(str(current_app.config["TIMEZONE"]))


def zone_label(shown: ZoneInfo | None = None) -> str:
    """What editors call the zone: Beijing time for China's, else the zone's own key."""
    key = (shown or zone()).key
    return str(BEIJING_TIME) if key in BEIJING else key


def _locale() -> str:
    return str(get_locale() or "zh") if has_request_context() else "en"


def show(moment: datetime, shown: ZoneInfo, locale: str) -> str:
    """2026年12月1日 15:52 / 1 December 2026, 15:52, in ``shown``, without the zone's name."""
    local = _aware(moment).astimezone(shown)
    if locale == "zh":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return str(format_datetime(local, "d MMMM y, HH:mm", locale="en"))


def clock(moment: datetime | None) -> str:
    """A stored time in the editors' zone and the page's language, without the zone's name."""
    return "" if moment is None else show(moment, zone(), _locale())


def when(moment: datetime | None) -> str:
    """A stored time as editors read it: "2026年12月1日 15:52（北京时间）"."""
    if moment is None:
        return ""
    return str(_("%(time)s (%(zone)s)", time=clock(moment), zone=zone_label()))


def field_time(moment: datetime | None) -> str:
    """A stored time as a datetime-local field's value in the editors' zone (2026-12-01T15:30)."""
    return "" if moment is None else f"{_aware(moment).astimezone(zone()):%Y-%m-%dT%H:%M}"


def parse_local(text: str, typed_in: ZoneInfo | None = None) -> datetime:
    """A time typed in the editors' zone as an aware UTC datetime; ValueError if it is not one.

    A wall time the zone skips (a summer-time jump) is no time at all and is refused, rather
    than silently moved by an hour; a date at the ends of the calendar that has no UTC
    counterpart is refused the same way.
    """
    local_zone = typed_in or zone()
    cleaned = text.strip()
    for pattern in TIME_FORMATS:
        try:
            typed = datetime.strptime(cleaned, pattern)
        except ValueError:
            continue
        try:
            moment = typed.replace(tzinfo=local_zone).astimezone(UTC)
            back = moment.astimezone(local_zone).replace(tzinfo=None)
        except (OverflowError, ValueError) as error:
            raise ValueError(text) from error
        if back != typed:
            raise ValueError(text)
        return moment
    raise ValueError(text)


def from_header(value: str | None) -> datetime | None:
    """An email's Date header as an aware datetime, or None when it is missing or unreadable."""
    if not value:
        return None
    try:
        return _aware(parsedate_to_datetime(str(value)))
    except (TypeError, ValueError, IndexError):
        return None


def header_time(value: str | None) -> str:
    """An email's Date header in the editors' zone; the header as it is if it cannot be read."""
    moment = from_header(value)
    return clock(moment) if moment is not None else str(value or "")


def _aware(moment: datetime) -> datetime:
    # The models read every time back aware; a naive one can only be UTC from elsewhere.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def init_app(app: Flask) -> None:
    """Give every template the editors' clock."""
    app.jinja_env.globals.update(
        clock=clock,
        when=when,
        zone_label=zone_label,
        field_time=field_time,
        header_time=header_time,
    )
    app.jinja_env.filters["clock"] = clock
    app.jinja_env.filters["when"] = when
