"""What editors see of bounces and complaints: a panel on each send's page and on each
subscriber's page, and a card on the editor home (all through core.registry).

A send's rates are out of the subscribers it reached (delivered to the mail server, or
bounced): Gmail and Yahoo ask senders to keep complaints under 0.3 %, and mailbox providers
start refusing a sender whose bounces pass about 2 %; the panel warns before either.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import Delivery
from core import registry
from core.db import utcnow
from inbound.models import MailEventRow
from issues.models import Issue
from subscribers.models import Subscriber

# Percent of the subscribers reached: (warn from, what providers tolerate).
COMPLAINT_RATES = (0.1, 0.3)
BOUNCE_RATES = (1.5, 2.0)
LATEST = 20
HOME_DAYS = 30

KIND_LABELS = {
    "hard_bounce": _l("Bounced: the address does not work"),
    "soft_bounce": _l("Temporary bounce"),
    "complaint": _l("Marked as spam"),
    "unsubscribe": _l("Unsubscribed by email"),
    "auto_reply": _l("Automatic reply"),
}
EFFECT_LABELS = {
    "suppressed": _l("Address blocked"),
    "soft_counted": _l("Counted; mail continues for now"),
    "unsubscribed": _l("Unsubscribed"),
    "ignored": _l("Nothing to change"),
    "unmatched": _l("No subscriber matches"),
}


def init_app(app: Flask) -> None:
    registry.add_panel(app, "campaign", "web/inbound/_campaign_panel.html", campaign_panel)
    registry.add_panel(app, "subscriber", "web/inbound/_subscriber_panel.html", subscriber_panel)
    registry.add_card(app, "web/inbound/_home_card.html", home_card, order=25)
    app.jinja_env.globals["mail_event_labels"] = {"kinds": KIND_LABELS, "effects": EFFECT_LABELS}


def _by_kind(db_session: Session, *where: Any) -> dict[str, int]:
    """Events of each kind that concern a subscriber: a report that matched nobody (a stranger's
    address, a forged token) is no bounce or complaint of ours, and is counted on its own."""
    rows = db_session.execute(
        select(MailEventRow.kind, func.count(MailEventRow.id))
        .where(*where, MailEventRow.effect != "unmatched")
        .group_by(MailEventRow.kind)
    )
    return {str(kind): int(count) for kind, count in rows}


def percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _level(rate: float, limits: tuple[float, float]) -> str | None:
    """'over' from what providers tolerate, 'near' from the warning line, else None."""
    if rate >= limits[1]:
        return "over"
    return "near" if rate >= limits[0] else None


def campaign_panel(db_session: Session, campaign_id: int) -> dict[str, Any] | None:
    """Bounces, complaints and mailed unsubscribes of one send, their rates and warnings;
    None until the send has reached someone."""
    statuses = dict(
        db_session.execute(
            select(Delivery.status, func.count(Delivery.id))
            .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(("sent", "bounced")))
            .group_by(Delivery.status)
        ).all()
    )
    bounced = int(statuses.get("bounced", 0))
    reached = int(statuses.get("sent", 0)) + bounced
    kinds = _by_kind(db_session, MailEventRow.campaign_id == campaign_id)
    if reached == 0 and not kinds:
        return None
    complained = int(
        db_session.scalar(
            select(func.count(func.distinct(MailEventRow.subscriber_id))).where(
                MailEventRow.campaign_id == campaign_id, MailEventRow.kind == "complaint"
            )
        )
        or 0
    )
    bounce_rate, complaint_rate = percent(bounced, reached), percent(complained, reached)
    return {
        "reached": reached,
        "bounced": bounced,
        "complained": complained,
        "kinds": kinds,
        "bounce_rate": bounce_rate,
        "complaint_rate": complaint_rate,
        "bounce_level": _level(bounce_rate, BOUNCE_RATES),
        "complaint_level": _level(complaint_rate, COMPLAINT_RATES),
        "latest": _latest(db_session, MailEventRow.campaign_id == campaign_id),
    }


def _latest(db_session: Session, *where: Any, limit: int = LATEST) -> list[dict[str, Any]]:
    """The newest events, each with its reader's address (none once erased) and issue."""
    rows = db_session.execute(
        select(MailEventRow, Subscriber.email, Subscriber.erased_at, Issue.number)
        .outerjoin(Subscriber, Subscriber.id == MailEventRow.subscriber_id)
        .outerjoin(Campaign, Campaign.id == MailEventRow.campaign_id)
        .outerjoin(Issue, Issue.id == Campaign.issue_id)
        .where(*where)
        .order_by(MailEventRow.occurred_at.desc(), MailEventRow.id.desc())
        .limit(limit)
    )
    # Once a reader is erased, neither their address nor the server's words (which often
    # quote it) are shown.
    return [
        {
            "event": event,
            "email": None if erased_at is not None else email,
            "reason": None if erased_at is not None else event.reason,
            "issue_number": number,
        }
        for event, email, erased_at, number in rows
    ]


def subscriber_panel(db_session: Session, subscriber_id: int) -> dict[str, Any] | None:
    """What came back about one subscriber's mail, newest first; None when nothing did."""
    latest = _latest(db_session, MailEventRow.subscriber_id == subscriber_id, limit=50)
    return {"latest": latest} if latest else None


def home_card(db_session: Session) -> dict[str, Any]:
    """Counts over the last days: addresses blocked, bounces, complaints, mailed unsubscribes
    of subscribers, and apart from them the reports that matched nobody."""
    since = utcnow() - timedelta(days=HOME_DAYS)
    effects = dict(
        db_session.execute(
            select(MailEventRow.effect, func.count(MailEventRow.id))
            .where(
                MailEventRow.recorded_at >= since,
                MailEventRow.effect.in_(("suppressed", "unmatched")),
            )
            .group_by(MailEventRow.effect)
        ).all()
    )
    kinds = _by_kind(db_session, MailEventRow.recorded_at >= since)
    return {
        "days": HOME_DAYS,
        "blocked": int(effects.get("suppressed", 0)),
        "unmatched": int(effects.get("unmatched", 0)),
        "kinds": kinds,
    }
