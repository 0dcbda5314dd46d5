"""A subscriber's consent history as sentences an editor reads, not as stored records.

"2026年12月1日 15:52 通过网页订阅，主题：政策、数据": the time in the editors' zone
(core.clock), what happened and how, and what changed with translated field names and
values. The browser of a record is shortened to browser and system ("Chrome 120 · Windows");
the stored text is kept whole for anyone who needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import agents
from core import clock
from subscribers import topics
from subscribers.models import ConsentEvent

ACTIONS: dict[str, Any] = {
    "subscribe": _l("signed up"),
    "confirm": _l("confirmed the subscription"),
    "preferences": _l("changed the preferences"),
    "unsubscribe": _l("unsubscribed from the list"),
    "resubscribe": _l("subscribed again"),
    "import": _l("imported"),
    "member": _l("changed the membership"),
    "edit": _l("changed the details"),
    "suppress": _l("blocked the address"),
    "erase": _l("erased the personal data"),
}
# How it came about; editors and imports name who did it.
SOURCES: dict[str, Any] = {
    "web": _l("on the website"),
    "email-link": _l("with the link in an email"),
    "one-click": _l("with the one-click unsubscribe in an email"),
    "bounce": _l("after the mail bounced"),
    "complaint": _l("after the reader marked the email as spam"),
    "mailto": _l("by writing to the unsubscribe address"),
}
# What the mail services report (inbound.events.SOURCES): bounces, complaints, unsubscribes.
REPORTED = ("dsn", "arf", "ses", "mailgun", "postmark", "sendgrid")
FIELDS: dict[str, Any] = {
    "email": _l("email"),
    "name": _l("name"),
    "organisation": _l("organisation"),
    "topics": _l("topics"),
    "format": _l("format"),
    "locale": _l("language"),
    "member": _l("member"),
    "status": _l("status"),
    "reason": _l("reason"),
}
REASONS: dict[str, Any] = {
    "hard_bounce": _l("the address does not exist"),
    "complaint": _l("marked as spam"),
    "manual": _l("blocked by an editor"),
}
# Times the action itself says; shown as fields they would only repeat it as stamps.
UNSHOWN = ("confirmed_at", "unsubscribed_at", "erased_at", "blocked")
# Actions whose words already say the status they leave behind.
SAYS_STATUS = ("subscribe", "import", "confirm", "unsubscribe", "resubscribe", "suppress")
# Actions that start a record: their changes are shown as the values set, not old → new.
FIRST = ("subscribe", "import")


@dataclass(frozen=True)
class Entry:
    """One line of the history: when, the sentence, the editor's note, where it came from."""

    time: str
    sentence: str
    note: str
    origin: str
    technical: bool  # the note is the mail service's words, folded away behind "details"


def entries(events: Iterable[ConsentEvent]) -> list[Entry]:
    return [entry(event) for event in events]


def entry(event: ConsentEvent) -> Entry:
    origin = " · ".join(part for part in (event.ip or "", browser(event.user_agent)) if part)
    return Entry(
        time=clock.clock(event.created_at),
        sentence=sentence(event),
        note=event.note or "",
        origin=origin,
        technical=event.source in (*REPORTED, "bounce", "complaint"),
    )


def sentence(event: ConsentEvent) -> str:
    """通过网页订阅，主题：政策、数据 / signed up on the website; topics: Policy, Data."""
    what = str(ACTIONS.get(event.action, event.action))
    reported = _l("as the mail service reported") if event.source in REPORTED else ""
    how = str(SOURCES.get(event.source, reported))
    if event.source in ("editor", "import") and event.actor:
        said = str(_("%(editor)s: %(what)s", what=what, editor=event.actor))
    elif how:
        said = str(_("%(what)s %(how)s", what=what, how=how))
    else:
        said = what
    details = _changes(event.action, event.changes or {})
    if event.action == "erase" and (event.changes or {}).get("blocked"):
        details.append(_("the address stays blocked"))
    parts = [said, *details]
    return _separator().join(parts)


def _separator() -> str:
    return "，" if _locale() == "zh" else "; "


def _locale() -> str:
    return str(get_locale() or "zh")


def _changes(action: str, changes: dict[str, Any]) -> list[str]:
    order = [name for name in FIELDS if name in changes]
    order += [name for name in changes if name not in FIELDS and name not in UNSHOWN]
    said = []
    for name in order:
        if name == "status" and action in SAYS_STATUS:
            continue  # the sentence already says it
        value = changes[name]
        label = str(FIELDS.get(name, name))
        pair = isinstance(value, list) and len(value) == 2
        if pair and action not in FIRST:
            shown = f"{_value(name, value[0])} → {_value(name, value[1])}"
        else:
            shown = _value(name, value[1] if pair else value)
        said.append(str(_("%(label)s: %(value)s", label=label, value=shown)))
    return said


def _value(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if value == "(erased)":
        return str(_("(erased)"))
    if name == "topics":
        keys = value if isinstance(value, list | tuple) else str(value).split(",")
        order = list(current_app.config["TOPICS"])
        keys = sorted(keys, key=lambda key: order.index(key) if key in order else len(order))
        return ("、" if _locale() == "zh" else ", ").join(str(topics.topic_label(k)) for k in keys)
    if name == "format" and value in topics.FORMAT_LABELS:
        return str(topics.FORMAT_LABELS[value][0])
    if name == "locale":
        return topics.LANGUAGE_LABELS.get(str(value), str(value))
    if name == "status" and value in topics.STATUS_LABELS:
        return str(topics.STATUS_LABELS[value])
    if name == "reason" and value in REASONS:
        return str(REASONS[value])
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    return str(value)


def browser(user_agent: str | None) -> str:
    """Chrome 120 · Windows: the browser and system a user agent names, or "" if none."""
    if not user_agent:
        return ""
    return agents.short(user_agent) or _("unknown browser")
