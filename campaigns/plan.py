"""Planning a campaign: freeze its audience and its editions, in one transaction.

``plan`` writes one ``Delivery`` per reader who is to get the issue (active, not blocked, not
erased, without a live delivery of this issue yet) with ``INSERT … SELECT``, and one frozen
``CampaignSegment`` per edition those readers need, rendered once. Either all of it is
committed with the campaign's start, or none of it: a crash while planning leaves the
campaign as it was, ready to start again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from core.db import utcnow
from core.i18n import N_
from issues.archive import load_by_number
from issues.models import Issue
from mailer.render import RenderedSegment
from mailer.render import Shortened
from mailer.render import render_segment
from mailer.segments import Segment
from mailer.segments import Slots
from subscribers.models import Subscriber
from subscribers.models import Suppression

# Planning gives up after this many rounds of readers changing their edition while it runs.
MAX_PLAN_ROUNDS = 5


class PlanError(ValueError):
    """The campaign cannot be planned; ``msgid`` and ``params`` say why, for any language."""

    def __init__(self, msgid: str, **params: Any) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid = msgid
        self.params = params


def has_live_delivery(issue_id: int) -> ColumnElement[bool]:
    """True for a subscriber who already has a delivery of the issue that was not skipped."""
    return exists().where(
        Delivery.issue_id == issue_id,
        Delivery.subscriber_id == Subscriber.id,
        Delivery.status != "skipped",
    )


def audience(issue_id: int) -> list[ColumnElement[bool]]:
    """Who is to get the issue now: active, not blocked, not erased, not reached already."""
    blocked = exists().where(Suppression.email_hash == Subscriber.email_hash)
    return [
        Subscriber.status == "active",
        Subscriber.erased_at.is_(None),
        Subscriber.email_hash.is_not(None),
        Subscriber.topics != "",
        ~blocked,
        ~has_live_delivery(issue_id),
    ]


@dataclass(frozen=True)
class Edition:
    """An edition the audience needs, with how many readers it has."""

    segment: Segment
    readers: int


def editions(db_session: Session, issue_id: int) -> list[Edition]:
    """The editions of the current audience, each with its number of readers."""
    rows = db_session.execute(
        select(Subscriber.topics, Subscriber.format, Subscriber.locale, func.count())
        .where(*audience(issue_id))
        .group_by(Subscriber.topics, Subscriber.format, Subscriber.locale)
        .order_by(Subscriber.topics, Subscriber.format, Subscriber.locale)
    )
    return [
        Edition(Segment(tuple(topics), fmt, locale), count) for topics, fmt, locale, count in rows
    ]


def plan(db_session: Session, campaign: Campaign, config: Mapping[str, Any]) -> int:
    """Freeze the audience and editions of ``campaign`` (not committed); the readers planned.

    Readers who change their edition while this runs are caught by the next round: each
    round renders the editions not yet frozen and plans the readers still missing.
    """
    issue = load_by_number(db_session, _issue_number(db_session, campaign.issue_id))
    if issue is None:
        raise PlanError(N_("The issue no longer exists."))
    frozen = {
        (row.topics, row.format, row.locale): row.id
        for row in db_session.scalars(
            select(CampaignSegment).where(CampaignSegment.campaign_id == campaign.id)
        )
    }
    freeze_seconds = 0.0
    started = time.perf_counter()
    _refresh_subscriber_statistics(db_session)
    for _ in range(MAX_PLAN_ROUNDS):
        needed = [
            e for e in editions(db_session, campaign.issue_id) if _key(e.segment) not in frozen
        ]
        freeze_started = time.perf_counter()
        for edition in needed:
            frozen[_key(edition.segment)] = freeze(db_session, campaign, issue, edition, config)
        freeze_seconds += time.perf_counter() - freeze_started
        _insert_deliveries(db_session, campaign)
        _refresh_ledger_statistics(db_session)
        if not editions(db_session, campaign.issue_id):
            break
    else:
        raise PlanError(
            N_("Readers kept changing their choices while the send was planned; try again.")
        )
    # Counted, not summed from rowcounts: some drivers report -1 for INSERT … SELECT.
    planned = int(
        db_session.scalar(
            select(func.count(Delivery.id)).where(Delivery.campaign_id == campaign.id)
        )
        or 0
    )
    campaign.planned = planned
    campaign.freeze_seconds = round(freeze_seconds, 3)
    campaign.plan_seconds = round(time.perf_counter() - started - freeze_seconds, 3)
    return planned


def _refresh_ledger_statistics(db_session: Session) -> None:
    """Let PostgreSQL's planner see the deliveries just written before the audience is asked
    for again. With the statistics of a ledger just filled, it chose a nested loop over both
    tables (10 s for 10,000 readers; 0.8 s once analysed). Only the ledger: planning writes
    nothing else, and analysing the subscriber table too cost 0.2 s of 0.23 at 100,000."""
    if db_session.get_bind().dialect.name == "postgresql":
        db_session.execute(text("ANALYZE delivery"))


def _refresh_subscriber_statistics(db_session: Session) -> None:
    """Analyse the subscriber table before planning when its statistics are missing or stale
    (a tenth of it changed since, autovacuum's own threshold): a table just imported, which
    the daemon has not caught up with yet, misleads the audience queries as a new ledger does.
    """
    if db_session.get_bind().dialect.name != "postgresql":
        return
    stale = db_session.scalar(
        text(
            "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL"
            " OR n_mod_since_analyze > 50 + n_live_tup / 10"
            " FROM pg_stat_user_tables WHERE relid = 'subscriber'::regclass"
        )
    )
    if stale is not False:
        db_session.execute(text("ANALYZE subscriber"))


def _key(segment: Segment) -> tuple[tuple[str, ...], str, str]:
    return (segment.topics, segment.format, segment.locale)


def _issue_number(db_session: Session, issue_id: int) -> int:
    number = db_session.scalar(select(Issue.number).where(Issue.id == issue_id))
    if number is None:
        raise PlanError(N_("The issue no longer exists."))
    return number


def freeze(
    db_session: Session,
    campaign: Campaign,
    issue: Issue,
    edition: Edition,
    config: Mapping[str, Any],
) -> int:
    """Render one edition and store it with the campaign; the id of the stored row."""
    rendered = render_segment(issue, edition.segment, config)
    row = CampaignSegment(
        campaign_id=campaign.id,
        issue_id=campaign.issue_id,
        topics=edition.segment.topics,
        format=edition.segment.format,
        locale=edition.segment.locale,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        nonce=rendered.slots.nonce,
        greetings=list(rendered.greetings),
        view_online_url=rendered.view_online_url,
        shortened=[[item.number, item.title] for item in rendered.shortened],
        articles=list(rendered.articles),
        html_bytes=rendered.html_bytes,
    )
    db_session.add(row)
    db_session.flush()
    return row.id


def thaw(row: CampaignSegment, issue_number: int) -> RenderedSegment:
    """The frozen edition as the renderer made it, ready to personalise."""
    greeting_with, greeting_without = row.greetings
    return RenderedSegment(
        segment=Segment(tuple(row.topics), row.format, row.locale),
        issue_number=issue_number,
        subject=row.subject,
        html=row.html,
        text=row.text,
        slots=Slots(row.nonce),
        greetings=(greeting_with, greeting_without),
        view_online_url=row.view_online_url,
        shortened=tuple(Shortened(int(number), str(title)) for number, title in row.shortened),
        articles=tuple(row.articles),
    )


def _insert_deliveries(db_session: Session, campaign: Campaign) -> None:
    """One queued delivery per reader of the audience, with their frozen edition, in SQL."""
    segment = CampaignSegment
    now = utcnow()
    domain = _domain_expression(db_session)
    chosen = (
        select(
            literal(campaign.id),
            literal(campaign.issue_id),
            Subscriber.id,
            segment.id,
            domain,
            literal("queued"),
            literal(0),
            literal(now, type_=Delivery.__table__.c.next_attempt_at.type),
        )
        .join(
            segment,
            and_(
                segment.campaign_id == campaign.id,
                segment.topics == Subscriber.topics,
                segment.format == Subscriber.format,
                segment.locale == Subscriber.locale,
            ),
        )
        .where(*audience(campaign.issue_id))
        .order_by(Subscriber.id)
    )
    db_session.execute(
        insert(Delivery).from_select(
            [
                "campaign_id",
                "issue_id",
                "subscriber_id",
                "segment_id",
                "domain",
                "status",
                "attempts",
                "next_attempt_at",
            ],
            chosen,
        )
    )


def _domain_expression(db_session: Session) -> ColumnElement[str]:
    """The part of the address after the last @, lower-cased, in the backend's SQL."""
    email = Subscriber.email
    if db_session.get_bind().dialect.name == "postgresql":
        return func.lower(func.split_part(email, "@", -1))
    return func.lower(func.substr(email, func.instr(email, "@") + 1))
