"""Starting, approving, pausing, resuming and cancelling campaigns: each a conditional update.

Every change of a campaign's status is one ``UPDATE … WHERE status IN (…)``: whoever loses a
race (two clicks, two beats, two web servers) changes nothing and is told so. Functions take
the caller's session and do not commit; work for the workers is enqueued after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.models import OPEN_STATUSES
from campaigns.models import Campaign
from campaigns.models import Delivery
from campaigns.plan import PlanError
from campaigns.plan import audience
from campaigns.plan import plan
from core.db import on_commit
from core.db import utcnow
from core.i18n import N_
from issues.models import Issue
from subscribers.models import Subscriber

# Which statuses each action may start from.
PAUSABLE = ("running",)
RESUMABLE = ("paused",)
CANCELLABLE = ("draft", "scheduled", "running", "paused")


class CampaignError(ValueError):
    """An action that cannot be done now; ``msgid`` and ``params`` say why, in any language."""

    def __init__(self, msgid: str, **params: Any) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid = msgid
        self.params = params


@dataclass(frozen=True)
class Editor:
    """Who acts: their address (for the record) and whether they are an administrator."""

    email: str
    is_admin: bool


def audience_size(db_session: Session, issue_id: int) -> int:
    """How many readers a campaign of the issue would reach if it started now."""
    return int(db_session.scalar(select(func.count(Subscriber.id)).where(*audience(issue_id))) or 0)


def open_campaign(db_session: Session, issue_id: int) -> Campaign | None:
    """The issue's campaign that is not finished yet, if any."""
    query = select(Campaign).where(
        Campaign.issue_id == issue_id, Campaign.status.in_(OPEN_STATUSES)
    )
    return db_session.scalars(query).first()


def create(
    db_session: Session,
    issue_id: int,
    editor: Editor,
    config: Mapping[str, Any],
    enqueue_start: Callable[[int], None],
    *,
    send_at: datetime | None = None,
    not_after: datetime | None = None,
    new_subscribers: bool = False,
) -> Campaign:
    """A campaign of the issue: scheduled (now, or at ``send_at``), or a draft that waits
    for an administrator when NEWSLETTER_SEND_APPROVAL is on and ``editor`` is not one."""
    issue = db_session.get(Issue, issue_id)
    if issue is None:
        raise CampaignError(N_("There is no such issue."))
    _check_issue(issue, new_subscribers)
    now = utcnow()
    if not_after is not None and not_after <= (send_at or now):
        raise CampaignError(N_("The “do not start after” time must come after the start time."))
    if send_at is not None and send_at < now and not_after is not None and not_after < now:
        raise CampaignError(N_("The “do not start after” time has already passed."))
    if audience_size(db_session, issue_id) == 0:
        raise CampaignError(
            N_("No reader is waiting for this issue: everyone active has it already.")
        )
    waits = bool(config["SEND_APPROVAL"]) and not editor.is_admin
    campaign = Campaign(
        issue_id=issue_id,
        status="draft" if waits else "scheduled",
        new_subscribers=new_subscribers,
        created_by=editor.email,
        approved_by=None if waits else editor.email,
        issue_version=issue.version,
        send_at=send_at or now,
        not_after=not_after,
    )
    if open_campaign(db_session, issue_id) is not None:
        raise CampaignError(N_("This issue is already being sent; see its send."))
    db_session.add(campaign)
    try:
        db_session.flush()
    except IntegrityError:
        # Another request created one in the meantime (the unique index decided): this
        # request's transaction is over, as the caller's rollback will say.
        db_session.rollback()
        raise CampaignError(N_("This issue is already being sent; see its send.")) from None
    if not waits:
        _start_when_due(db_session, campaign, enqueue_start)
    return campaign


def _changed_since_scheduled(campaign: Campaign, issue: Issue | None) -> str | None:
    """Why the campaign must not start with the issue as it is now, if it must not."""
    if issue is None or issue.status != ("sent" if campaign.new_subscribers else "ready"):
        return N_("The issue is no longer ready, so the send was stopped.")
    if campaign.issue_version is not None and issue.version != campaign.issue_version:
        return N_(
            "The issue was changed after this send was scheduled, so the send was stopped; "
            "schedule it again to send the new version."
        )
    return None


def _check_issue(issue: Issue, new_subscribers: bool) -> None:
    if new_subscribers and issue.status != "sent":
        raise CampaignError(N_("Only an issue that has been sent can go to new subscribers."))
    if not new_subscribers and issue.status == "sent":
        raise CampaignError(N_("This issue has been sent; send it to new subscribers instead."))
    if not new_subscribers and issue.status != "ready":
        raise CampaignError(N_("Mark the issue ready before sending it."))


def _start_when_due(
    db_session: Session, campaign: Campaign, enqueue_start: Callable[[int], None]
) -> None:
    db_session.flush()
    if campaign.send_at is not None and campaign.send_at <= utcnow():
        campaign_id = campaign.id
        on_commit(db_session, lambda: enqueue_start(campaign_id))


def approve(
    db_session: Session, campaign_id: int, editor: Editor, enqueue_start: Callable[[int], None]
) -> Campaign:
    """An administrator other than the one who asked lets a waiting send go."""
    campaign = _get(db_session, campaign_id)
    if not editor.is_admin:
        raise CampaignError(N_("Only an administrator can approve a send."))
    if campaign.created_by.casefold() == editor.email.casefold():
        raise CampaignError(
            N_("A send must be approved by someone other than the editor who asked for it.")
        )
    # What the administrator approves is the issue as it is now.
    issue = db_session.get(Issue, campaign.issue_id)
    version = issue.version if issue is not None else None
    if not _transition(
        db_session,
        campaign_id,
        ("draft",),
        status="scheduled",
        approved_by=editor.email,
        issue_version=version,
    ):
        raise CampaignError(N_("This send is no longer waiting for approval."))
    db_session.refresh(campaign)
    _start_when_due(db_session, campaign, enqueue_start)
    return campaign


def start(
    db_session: Session, campaign_id: int, editor: str | None, config: Mapping[str, Any]
) -> int | None:
    """Start a scheduled campaign that is due: plan it and mark it running, in the caller's
    transaction; the number of readers planned, or None when it was not for this caller
    (started already, not due yet, or expired, which is then recorded)."""
    now = utcnow()
    expired = db_session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "scheduled", Campaign.not_after < now)
        .values(status="expired", finished_at=now)
    )
    if expired.rowcount:  # type: ignore[attr-defined]
        return None
    campaign = _get(db_session, campaign_id)
    issue = db_session.get(Issue, campaign.issue_id)
    stopped = _changed_since_scheduled(campaign, issue)
    if stopped is not None:
        # The issue was taken back to draft, or edited and made ready again, after the send
        # was scheduled or approved: what was asked for (and approved) is not what would go.
        reason = {"msgid": stopped, "params": {}}
        _transition(
            db_session,
            campaign_id,
            ("scheduled",),
            status="cancelled",
            finished_at=now,
            paused_reason=reason,
        )
        return None
    won = db_session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "scheduled", Campaign.send_at <= now)
        .values(status="running", started_at=now, started_by=editor, heartbeat_at=now)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return None
    db_session.refresh(campaign)
    try:
        return plan(db_session, campaign, config)
    except PlanError as error:
        raise CampaignError(error.msgid, **error.params) from None


def stop_unstartable(db_session: Session, campaign_id: int, msgid: str, **params: Any) -> bool:
    """A scheduled send that cannot start ends as cancelled, with the reason on its page;
    the editor fixes the cause and sends again."""
    reason = {"msgid": msgid, "params": params}
    return _transition(
        db_session,
        campaign_id,
        ("scheduled",),
        status="cancelled",
        finished_at=utcnow(),
        paused_reason=reason,
    )


def pause(db_session: Session, campaign_id: int, reason: Mapping[str, Any] | None = None) -> bool:
    """Stop sending within a second; claimed rows not yet sent go back to the queue."""
    return _transition(
        db_session, campaign_id, PAUSABLE, status="paused", paused_at=utcnow(), paused_reason=reason
    )


def resume(db_session: Session, campaign_id: int, enqueue_batches: Callable[[int], None]) -> bool:
    """Continue where the campaign stopped; nothing already sent goes out again."""
    done = _transition(
        db_session,
        campaign_id,
        RESUMABLE,
        status="running",
        paused_reason=None,
        paused_at=None,
        relay_failures=0,
        heartbeat_at=utcnow(),
    )
    if done:
        on_commit(db_session, lambda: enqueue_batches(campaign_id))
    return done


def cancel(db_session: Session, campaign_id: int) -> int:
    """Stop for good; the readers not reached are recorded as skipped (cancelled), and
    remain free to get the issue from a later send. Returns how many were not sent."""
    if not _transition(
        db_session, campaign_id, CANCELLABLE, status="cancelled", finished_at=utcnow()
    ):
        raise CampaignError(N_("This send has already ended."))
    result = db_session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(("queued", "retry")))
        .values(status="skipped", skip_reason="cancelled")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _transition(
    db_session: Session, campaign_id: int, allowed: tuple[str, ...], **values: Any
) -> bool:
    result = db_session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(allowed))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _get(db_session: Session, campaign_id: int) -> Campaign:
    campaign = db_session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(N_("There is no such send."))
    return campaign
