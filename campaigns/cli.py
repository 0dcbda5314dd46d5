"""``flask --app web campaign …``: send an issue to its readers, follow the send, stop it.

A thin shell over ``campaigns.control`` and ``campaigns.progress``: each command parses its
arguments, calls one of them in one transaction and prints the outcome. The command line acts
as an administrator named "cli". Times are read and shown in the configured ``TIMEZONE``.
A wrong argument, or an action the send's state does not allow, prints one sentence on
stderr and exits with status 2; nothing is written then.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC
from datetime import datetime
from typing import NoReturn
from zoneinfo import ZoneInfo

import click
from flask import Flask
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import progress
from campaigns.control import CampaignError
from campaigns.control import Editor
from campaigns.models import DELIVERY_STATUSES
from campaigns.models import Campaign
from campaigns.models import Delivery
from core import db
from core.db import utcnow
from issues.models import Issue
from issues.store import ID_MAX
from mailer.segments import Segment

CLI_EDITOR = Editor("cli", is_admin=True)
TIME_FORMAT = "%Y-%m-%d %H:%M"
# A wait ends when the send reaches one of these; only "done" exits 0.
WAIT_ENDS = ("done", "cancelled", "expired", "paused")
POLL_SECONDS = 0.5
# A due send no worker has started after this long earns a hint that one may be missing.
NO_WORKER_HINT_SECONDS = 30

campaign_cli = AppGroup("campaign", help="Send an issue to its readers and follow the send.")


def init_app(app: Flask) -> None:
    app.cli.add_command(campaign_cli)


def refuse(message: str) -> NoReturn:
    """Stop with one sentence on stderr and exit status 2."""
    click.echo(message, err=True)
    raise SystemExit(2)


# --- times -------------------------------------------------------------------------------


def zone() -> ZoneInfo:
    return ZoneInfo(str(current_app.config["TIMEZONE"]))


def parse_time(text: str, option: str) -> datetime:
    """``text`` ('YYYY-MM-DD HH:MM' in the configured time zone) as an aware UTC datetime."""
    try:
        local = datetime.strptime(text.strip(), TIME_FORMAT)
        # Year 1 or 9999 in a far zone has no UTC counterpart: refused like any other typo.
        return local.replace(tzinfo=zone()).astimezone(UTC)
    except (ValueError, OverflowError):
        refuse(
            f"{option} {text!r} is not a time; write it as 'YYYY-MM-DD HH:MM' "
            f"in {current_app.config['TIMEZONE']}, such as '2026-05-04 09:30'."
        )


def shown(moment: datetime | None) -> str:
    """A stored time as the editors read it: local, to the minute."""
    return "-" if moment is None else moment.astimezone(zone()).strftime(TIME_FORMAT)


def check_times(send_at: datetime | None, not_after: datetime | None) -> None:
    """Refuse times already gone: a typo in the year must not send at once, or never."""
    # A time is given to the minute, so the current minute still counts as now.
    now = utcnow().replace(second=0, microsecond=0)
    if send_at is not None and send_at < now:
        refuse(f"The --at time {shown(send_at)} has already passed; leave --at out to send now.")
    if not_after is not None and not_after <= utcnow():
        refuse(f"The --not-after time {shown(not_after)} has already passed.")


# --- send --------------------------------------------------------------------------------


@campaign_cli.command("send", help="Send issue NUMBER to its readers, now or at --at.")
@click.argument("number")
@click.option("--at", "at", metavar="TIME", help="Start at this local time, 'YYYY-MM-DD HH:MM'.")
@click.option(
    "--not-after", metavar="TIME", help="Do not start after this local time (the send expires)."
)
@click.option(
    "--new-subscribers",
    is_flag=True,
    help="Send an issue already sent to readers who joined since.",
)
@click.option(
    "--wait", is_flag=True, help="Follow the send until it ends: exit 0 when done, 1 otherwise."
)
def send_command(
    number: str, at: str | None, not_after: str | None, new_subscribers: bool, wait: bool
) -> None:
    from campaigns.tasks import enqueue_start

    send_at = parse_time(at, "--at") if at is not None else None
    latest = parse_time(not_after, "--not-after") if not_after is not None else None
    check_times(send_at, latest)
    with db.transaction() as db_session:
        issue = _issue(db_session, number)
        readers = control.audience_size(db_session, issue.id)
        try:
            campaign = control.create(
                db_session,
                issue.id,
                CLI_EDITOR,
                current_app.config,
                enqueue_start,
                send_at=send_at,
                not_after=latest,
                new_subscribers=new_subscribers,
            )
        except CampaignError as error:
            refuse(str(error))
    click.echo(_created(campaign, issue.number, readers))
    if wait:
        raise click.exceptions.Exit(follow(campaign.id))


def _issue(db_session: Session, number: str) -> Issue:
    text = number.strip()
    found = None
    if text.isascii() and text.isdigit() and 0 < int(text) <= ID_MAX:
        found = db_session.scalars(select(Issue).where(Issue.number == int(text))).one_or_none()
    if found is None:
        refuse(f"There is no issue {number}; `flask issue list` shows the imported issues.")
    return found


def _created(campaign: Campaign, number: int, readers: int) -> str:
    audience = "readers who joined since" if campaign.new_subscribers else "its readers"
    if campaign.status == "draft":
        return f"Campaign {campaign.id}: issue {number} waits for an administrator's approval."
    if campaign.send_at is not None and campaign.send_at > utcnow():
        deadline = f", not after {shown(campaign.not_after)}" if campaign.not_after else ""
        return (
            f"Campaign {campaign.id}: issue {number} goes to {audience} at "
            f"{shown(campaign.send_at)} {current_app.config['TIMEZONE']}{deadline} "
            f"({readers} waiting now)."
        )
    return (
        f"Campaign {campaign.id}: issue {number} is going to {audience}, {readers} now; "
        f"`flask campaign status {campaign.id}` shows how far it is."
    )


# --- following a send --------------------------------------------------------------------


def follow(campaign_id: int) -> int:
    """Show the send's progress on one line until it ends or pauses; the exit status."""
    db_session = db.session()
    in_place = sys.stdout.isatty()
    shown_line, hinted, since = "", False, time.monotonic()
    try:
        while True:
            status, found = look(db_session, campaign_id)
            line = progress_line(status, found)
            if line != shown_line:
                _show(line, in_place)
                shown_line = line
            if status in WAIT_ENDS:
                break
            if not hinted and status == "scheduled" and _due(db_session, campaign_id, since):
                hinted = True
                click.echo(
                    f"\nNo worker has started campaign {campaign_id} yet: is a worker running?",
                    err=True,
                )
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        click.echo(
            f"\nStopped watching; the send goes on (`flask campaign status {campaign_id}`).",
            err=True,
        )
        return 1
    if in_place:
        click.echo()
    campaign = _campaign(db_session, str(campaign_id))
    click.echo(outcome(campaign))
    return 0 if status == "done" else 1


def look(db_session: Session, campaign_id: int) -> tuple[str, progress.Counts]:
    """The campaign's status and counts as the workers last committed them."""
    status = db_session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    found = progress.counts(db_session, campaign_id)
    # Ending the read lets the next look see what the workers committed since.
    db_session.rollback()
    assert status is not None, "a campaign is never deleted"
    return status, found


def _due(db_session: Session, campaign_id: int, since: float) -> bool:
    """True once a scheduled send has been due for a while and still not started."""
    if time.monotonic() - since < NO_WORKER_HINT_SECONDS:
        return False
    send_at = db_session.scalar(select(Campaign.send_at).where(Campaign.id == campaign_id))
    db_session.rollback()
    return send_at is None or send_at <= utcnow()


def _show(line: str, in_place: bool) -> None:
    if in_place:
        # One line, rewritten where it stands; the padding wipes a longer line before it.
        click.echo("\r" + line.ljust(79), nl=False)
    else:
        click.echo(line)


def progress_line(status: str, found: progress.Counts) -> str:
    """One line: the status, how much is settled, and what happened to it."""
    if not found.total:
        return f"{status}: no reader planned yet"
    others = [
        f"{found[name]} {name}" for name in ("retry", "failed", "bounced", "skipped") if found[name]
    ]
    details = ", ".join([f"{found['sent']} sent", *others])
    return f"{status}: {found.settled} of {found.total} settled ({found.percent}%): {details}"


def outcome(campaign: Campaign) -> str:
    """The sentence that ends a wait: what the send came to, and what to do next."""
    if campaign.status == "done":
        return f"Campaign {campaign.id} is done."
    if campaign.status == "paused":
        return (
            f"Campaign {campaign.id} paused: {paused_reason(campaign)} "
            f"`flask campaign resume {campaign.id}` continues it."
        )
    if campaign.status == "expired":
        return f"Campaign {campaign.id} expired: it could not start before its --not-after time."
    return f"Campaign {campaign.id} was cancelled."


def paused_reason(campaign: Campaign) -> str:
    reason = campaign.paused_reason
    if not reason:
        return "an editor paused it."
    msgid, params = str(reason.get("msgid", "")), reason.get("params") or {}
    return msgid % params if params else msgid


# --- looking at sends --------------------------------------------------------------------


@campaign_cli.command("list", help="List sends, newest first, with how many were sent.")
def list_command() -> None:
    db_session = db.session()
    rows = db_session.execute(
        select(Campaign, Issue.number)
        .join(Issue, Issue.id == Campaign.issue_id)
        .order_by(Campaign.id.desc())
    )
    tallies = _tallies(db_session)
    lines = []
    for campaign, number in rows:
        sent, total = tallies.get(campaign.id, (0, 0))
        audience = "new subscribers" if campaign.new_subscribers else "everyone"
        cells = (
            str(campaign.id),
            f"issue {number}",
            campaign.status,
            f"{sent} of {total} sent",
            audience,
            f"created {shown(campaign.created_at)}",
            f"by {campaign.created_by}",
        )
        lines.append("\t".join(cells))
    click.echo("\n".join(lines) if lines else "No issue has been sent yet.")


def _tallies(db_session: Session) -> dict[int, tuple[int, int]]:
    """(sent, planned) of every campaign, in one grouped query."""
    rows = db_session.execute(
        select(
            Delivery.campaign_id,
            func.count().filter(Delivery.status == "sent"),
            func.count(),
        ).group_by(Delivery.campaign_id)
    )
    return {campaign_id: (int(sent), int(total)) for campaign_id, sent, total in rows}


@campaign_cli.command("status", help="Show a send: its status, then its deliveries by status.")
@click.argument("campaign_id")
def status_command(campaign_id: str) -> None:
    db_session = db.session()
    campaign = _campaign(db_session, campaign_id)
    found = progress.progress(db_session, campaign)
    click.echo("\n".join(status_lines(found)))


def status_lines(found: progress.Progress) -> list[str]:
    """The status word alone on the first line, then the facts, the counts and the editions."""
    campaign = found.campaign
    lines = [campaign.status, *_facts(campaign)]
    lines += [f"{status:<10}{found.counts[status]:>8}" for status in DELIVERY_STATUSES]
    lines.append(f"{'total':<10}{found.counts.total:>8}")
    if found.segments:
        lines.append("editions (topics/format/language: sent of planned):")
        for item in found.segments:
            row = item.segment
            key = Segment(tuple(row.topics), row.format, row.locale).key
            lines.append(f"  {key:<32}{item.counts['sent']:>6} of {item.counts.total}")
    if found.errors:
        lines.append("latest failures:")
        for error in found.errors:
            reply = f"{error.smtp_code or ''} {error.smtp_reply or ''}".strip() or "-"
            email = error.email or "(erased)"
            lines.append(f"  {email}  {error.status}  {error.attempts} tries  {reply}")
    return lines


def _facts(campaign: Campaign) -> list[str]:
    zone_name = current_app.config["TIMEZONE"]
    audience = "readers who joined since" if campaign.new_subscribers else "every reader"
    lines = [f"to {audience}; created by {campaign.created_by} at {shown(campaign.created_at)}"]
    if campaign.status in ("draft", "scheduled"):
        lines.append(f"starts at {shown(campaign.send_at)} ({zone_name})")
        if campaign.not_after is not None:
            lines.append(f"not after {shown(campaign.not_after)} ({zone_name})")
    if campaign.started_at is not None:
        lines.append(f"started at {shown(campaign.started_at)} ({zone_name})")
    if campaign.finished_at is not None:
        lines.append(f"finished at {shown(campaign.finished_at)} ({zone_name})")
    if campaign.status == "paused":
        lines.append(f"paused: {paused_reason(campaign)}")
    return lines


def _campaign(db_session: Session, campaign_id: str) -> Campaign:
    text = campaign_id.strip()
    found = None
    if text.isascii() and text.isdigit() and 0 < int(text) <= ID_MAX:
        found = db_session.get(Campaign, int(text))
    if found is None:
        refuse(f"There is no campaign {campaign_id}; `flask campaign list` shows the sends.")
    return found


# --- pause, resume, cancel ---------------------------------------------------------------


@campaign_cli.command("pause", help="Pause a running send; nothing more goes out until resumed.")
@click.argument("campaign_id")
def pause_command(campaign_id: str) -> None:
    with db.transaction() as db_session:
        campaign = _campaign(db_session, campaign_id)
        if not control.pause(db_session, campaign.id):
            status = _status(db_session, campaign)
            refuse(f"Campaign {campaign.id} is {status}; only a running send can be paused.")
    click.echo(
        f"Campaign {campaign.id} is paused; `flask campaign resume {campaign.id}` continues it."
    )


@campaign_cli.command("resume", help="Resume a paused send where it stopped.")
@click.argument("campaign_id")
def resume_command(campaign_id: str) -> None:
    from campaigns.tasks import enqueue_batches

    with db.transaction() as db_session:
        campaign = _campaign(db_session, campaign_id)
        if not control.resume(db_session, campaign.id, enqueue_batches):
            status = _status(db_session, campaign)
            refuse(f"Campaign {campaign.id} is {status}; only a paused send can be resumed.")
    click.echo(f"Campaign {campaign.id} is running again; nothing already sent goes out twice.")


@campaign_cli.command(
    "cancel", help="Stop a send for good; readers not reached can get a later one."
)
@click.argument("campaign_id")
def cancel_command(campaign_id: str) -> None:
    with db.transaction() as db_session:
        campaign = _campaign(db_session, campaign_id)
        try:
            unsent = control.cancel(db_session, campaign.id)
        except CampaignError:
            status = _status(db_session, campaign)
            refuse(f"Campaign {campaign.id} is {status}: it has already ended.")
    click.echo(f"Campaign {campaign.id} is cancelled; {unsent} readers were not sent the issue.")


def _status(db_session: Session, campaign: Campaign) -> str:
    """The campaign's status as it is now (another process may just have changed it)."""
    db_session.refresh(campaign)
    return campaign.status
