"""Editor pages for sending an issue: who gets what, test sends, the send's progress and report.

Thin adapters over campaigns.control and campaigns.progress: a view parses its form, calls
one function, commits, and answers with a page (or, for the page's own script, JSON). The
engine's refusals carry a message id and values, translated in the editor's language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms.fields.choices import SelectChoice

from campaigns import control
from campaigns import forms
from campaigns import progress
from campaigns import testsend
from campaigns.forms import edition_label
from campaigns.forms import translated
from campaigns.forms import when
from campaigns.forms import zone
from campaigns.models import OPEN_STATUSES
from campaigns.models import Campaign
from campaigns.models import Delivery
from campaigns.plan import editions
from core import auth
from core import db
from core import registry
from core.db import utcnow
from core.i18n import N_
from issues import preview
from issues.archive import load_by_number
from issues.models import Issue
from mailer.segments import all_segments
from subscribers.models import Subscriber
from subscribers.models import Suppression

bp = Blueprint("campaigns", __name__, url_prefix="/editor/campaigns")
bp.context_processor(forms.template_helpers)
CAMPAIGN = "<int(max=2147483647):campaign_id>"
ISSUE = "<int(max=2147483647):issue_id>"
LIST_SIZE = 100
REPORT_ROWS = 1000  # failures listed on the page; the CSV has every one
FINISHED = ("done", "cancelled", "expired")
Page = str | BaseResponse | tuple[str, int]


def init_app(app: Flask) -> None:
    """The send pages, their navigation entry and home card; the test builder for the worker."""
    app.register_blueprint(bp)
    registry.add_nav(app, "campaigns.index", _l("Sends"))
    registry.add_card(app, "web/campaigns/_home_card.html", _home_card, order=15)
    registry.add_tasks(app, "campaigns.testsend")
    registry.add_issue_action(app, "campaigns.new", _l("Send this issue"))


def _editor() -> auth.Editor:
    editor = auth.current_editor()
    assert editor is not None, "only views behind login_required act"
    return editor


# --- Lists --------------------------------------------------------------------------------


@bp.get("/")
@auth.login_required()
def index() -> Page:
    db_session = db.session()
    rows = db_session.execute(
        select(Campaign, Issue.number, Issue.title)
        .join(Issue, Issue.id == Campaign.issue_id)
        .order_by(Campaign.id.desc())
        .limit(LIST_SIZE)
    ).all()
    issues = db_session.scalars(select(Issue).order_by(Issue.number.desc()).limit(12)).all()
    tallies = _tallies(db_session, [row[0].id for row in rows])
    return render_template("web/campaigns/index.html", rows=rows, tallies=tallies, issues=issues)


def _tallies(db_session: Session, campaign_ids: list[int]) -> dict[int, progress.Counts]:
    """Each campaign's deliveries by status, in one grouped query."""
    found = {campaign_id: progress.Counts() for campaign_id in campaign_ids}
    result = db_session.execute(
        select(Delivery.campaign_id, Delivery.status, func.count())
        .where(Delivery.campaign_id.in_(campaign_ids))
        .group_by(Delivery.campaign_id, Delivery.status)
    )
    for campaign_id, status, number in result:
        found[campaign_id].by_status[str(status)] = int(number)
    return found


def _home_card(db_session: Session) -> dict[str, Any]:
    """The sends' card on the editor home: how many are under way (the latest linked), done."""
    grouped = db_session.execute(select(Campaign.status, func.count()).group_by(Campaign.status))
    counts = {str(status): int(count) for status, count in grouped}
    rows = db_session.execute(
        select(Campaign.id, Campaign.status, Issue.number)
        .join(Issue, Issue.id == Campaign.issue_id)
        .where(Campaign.status.in_(OPEN_STATUSES))
        .order_by(Campaign.id.desc())
        .limit(3)
    ).all()
    shown = [(row.id, row.number, str(forms.STATUS_LABELS[row.status])) for row in rows]
    under_way = sum(counts.get(status, 0) for status in OPEN_STATUSES)
    return {"done": counts.get("done", 0), "under_way": under_way, "open": shown}


# --- Who gets what, and the send form -----------------------------------------------------


def _issue_or_404(issue_id: int) -> Issue:
    number = db.session().scalar(select(Issue.number).where(Issue.id == issue_id))
    issue = load_by_number(db.session(), number) if number is not None else None
    if issue is None:
        abort(404)
    return issue


def _plan_rows(issue: Issue) -> list[dict[str, Any]]:
    """Each edition the audience needs: readers, and its render (None when over budget)."""
    rows = []
    for edition in editions(db.session(), issue.id):
        # The previews' store: each edition is rendered once per content version, not on
        # every view of this page (28 renders of a 500-article issue took 4.7 s).
        found = preview.rendered(issue, edition.segment)
        rendered = None if isinstance(found, str) else found
        rows.append({"segment": edition.segment, "readers": edition.readers, "rendered": rendered})
    return rows


def _left_out(db_session: Session) -> tuple[int, int]:
    """Addresses not counted: waiting for confirmation, and active but blocked."""
    blocked = select(Suppression.id).where(Suppression.email_hash == Subscriber.email_hash)
    pending = func.count(Subscriber.id).filter(Subscriber.status == "pending")
    active_blocked = func.count(Subscriber.id).filter(
        Subscriber.status == "active", blocked.exists()
    )
    found = db_session.execute(select(pending, active_blocked)).one()
    return int(found[0] or 0), int(found[1] or 0)


def _test_form(editions_needed: int, submitted: bool = True) -> forms.SendTestForm:
    """The test-send form, offering every edition readers get, or any one edition."""
    form = forms.SendTestForm() if submitted else forms.SendTestForm(formdata=None)
    every = _("Every edition readers get (%(count)s)", count=editions_needed)
    form.edition.choices = [SelectChoice("all", every)] if editions_needed else []
    form.edition.choices += [
        SelectChoice(segment.key, edition_label(segment))
        for segment in all_segments(current_app.config["TOPICS"])
    ]
    return form


def _new_page(
    issue: Issue,
    form: forms.SendForm,
    test_form: forms.SendTestForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    db_session = db.session()
    rows = _plan_rows(issue)
    pending, blocked = _left_out(db_session)
    page = render_template(
        "web/campaigns/new.html",
        issue=issue,
        rows=rows,
        total=sum(row["readers"] for row in rows),
        pending=pending,
        blocked=blocked,
        form=form,
        test_form=test_form or _test_form(len(rows), submitted=False),
        open_campaign=control.open_campaign(db_session, issue.id),
        recent_tests=testsend.recent(db_session, issue.id),
        segment_of=testsend.segment_of,
        new_subscribers=issue.status == "sent",
    )
    return page, status


@bp.route(f"/new/{ISSUE}", methods=["GET", "POST"])
@auth.login_required()
def new(issue_id: int) -> Page:
    issue = _issue_or_404(issue_id)
    form = forms.SendForm()
    if not form.validate_on_submit():
        return _new_page(issue, form, status=400 if form.is_submitted() else 200)
    chosen = forms.schedule(form, zone(), utcnow())
    if chosen is None:
        return _new_page(issue, form, status=400)
    from campaigns.tasks import enqueue_start

    editor = _editor()
    try:
        with db.transaction() as db_session:
            campaign = control.create(
                db_session,
                issue.id,
                control.Editor(editor.email, editor.is_admin),
                current_app.config,
                enqueue_start,
                send_at=chosen.send_at,
                not_after=chosen.not_after,
                new_subscribers=issue.status == "sent",
            )
    except control.CampaignError as error:
        flash(translated(error.msgid, error.params), "error")
        return _new_page(issue, form, status=400)
    flash(_created(campaign, issue.number), "info")
    return redirect(url_for(".show", campaign_id=campaign.id))


def _created(campaign: Campaign, number: int) -> str:
    if campaign.status == "draft":
        return str(
            _("Issue %(number)s waits for an administrator to approve the send.", number=number)
        )
    if campaign.send_at is not None and campaign.send_at > utcnow() + timedelta(seconds=5):
        time = when(campaign.send_at)
        return str(_("Issue %(number)s will be sent at %(time)s.", number=number, time=time))
    return str(_("Issue %(number)s is being sent.", number=number))


@bp.post(f"/new/{ISSUE}/test")
@auth.login_required()
def test_send(issue_id: int) -> Page:
    """Queue the edition (or every edition readers get) to a few addresses, marked as a test."""
    issue = _issue_or_404(issue_id)
    needed = [edition.segment for edition in editions(db.session(), issue.id)]
    test_form = _test_form(len(needed))
    addresses = test_form.address_list() if test_form.validate_on_submit() else None
    chosen = testsend.segments_for(test_form.edition.data or "", needed, current_app.config)
    if addresses and not chosen:
        test_form.edition.errors = [_("No reader is waiting for this issue; choose one edition.")]
    if not addresses or not chosen:
        return _new_page(issue, forms.SendForm(formdata=None), test_form, 400)
    from mailer.tasks import enqueue_delivery

    with db.transaction() as db_session:
        count = testsend.queue(db_session, issue.id, chosen, addresses, enqueue_delivery)
    flash(_("%(count)s test emails are queued. Their status is shown below.", count=count), "info")
    return redirect(url_for(".new", issue_id=issue.id, _anchor="tests"))


# --- One send: progress, report, controls -------------------------------------------------


def _campaign_or_404(campaign_id: int, fresh: bool = False) -> Campaign:
    campaign = db.session().get(Campaign, campaign_id, populate_existing=fresh)
    if campaign is None:
        abort(404)
    return campaign


def may_approve(campaign: Campaign) -> bool:
    editor = _editor()
    return editor.is_admin and editor.email != campaign.created_by


def actions(campaign: Campaign) -> list[str]:
    """The buttons the page shows for the campaign's status (and this editor)."""
    shown = {
        "pause": campaign.status in control.PAUSABLE,
        "resume": campaign.status in control.RESUMABLE,
        "cancel": campaign.status in control.CANCELLABLE,
        "approve": campaign.status == "draft" and may_approve(campaign),
    }
    return [name for name, visible in shown.items() if visible]


def snapshot(db_session: Session, campaign: Campaign) -> dict[str, Any]:
    """What the page's script refreshes, from two grouped queries on the ledger."""
    counts = progress.counts(db_session, campaign.id)
    rate = progress.sent_per_minute(db_session, campaign.id)
    eta = None
    if campaign.status == "running" and rate and counts.waiting:
        eta = utcnow() + timedelta(minutes=counts.waiting / rate)
    return {
        "status": campaign.status,
        "status_label": str(forms.STATUS_LABELS.get(campaign.status, campaign.status)),
        "finished": campaign.status in FINISHED,
        "total": counts.total,
        "settled": counts.settled,
        "percent": counts.percent,
        **{status: counts[status] for status in ("sent", "failed", "bounced", "skipped")},
        "waiting": counts.waiting,
        "per_minute": rate,
        "eta": when(eta),
        "paused_reason": forms.paused_reason(campaign) or "",
        "actions": actions(campaign),
    }


@bp.get(f"/{CAMPAIGN}")
@auth.login_required()
def show(campaign_id: int) -> Page:
    db_session = db.session()
    campaign = _campaign_or_404(campaign_id)
    finished = campaign.status in FINISHED
    found = progress.progress(db_session, campaign)
    if finished:
        failures = progress.failures(db_session, campaign.id, limit=REPORT_ROWS + 1)
    else:
        failures = found.errors
    return render_template(
        "web/campaigns/show.html",
        campaign=campaign,
        issue=db_session.get(Issue, campaign.issue_id),
        found=found,
        data=snapshot(db_session, campaign),
        finished=finished,
        failures=failures,
        report_rows=REPORT_ROWS,
        may_approve=may_approve(campaign),
        button=forms.ButtonForm(),
    )


@bp.get(f"/{CAMPAIGN}/progress.json")
@auth.login_required()
def progress_json(campaign_id: int) -> Response:
    response = jsonify(snapshot(db.session(), _campaign_or_404(campaign_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


def _act(campaign_id: int, action: Callable[[Session], str | None]) -> BaseResponse:
    """Run a button's action in one transaction. It returns the message to show, or None
    when the campaign was not in a state for it. The page's script gets JSON, a plain form
    post a redirect back with the message."""
    _campaign_or_404(campaign_id)
    if not forms.ButtonForm().validate_on_submit():
        abort(400)
    try:
        with db.transaction() as db_session:
            message = action(db_session)
    except control.CampaignError as error:
        message = None
        refusal = translated(error.msgid, error.params)
    else:
        refusal = _("This send is no longer in a state for that; nothing changed.")
    ok = message is not None
    shown = message if message is not None else refusal
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) != "application/json":
        flash(shown, "info" if ok else "error")
        return redirect(url_for(".show", campaign_id=campaign_id))
    campaign = _campaign_or_404(campaign_id, fresh=True)
    return jsonify({**snapshot(db.session(), campaign), "message": shown, "ok": ok})


@bp.post(f"/{CAMPAIGN}/pause")
@auth.login_required()
def pause(campaign_id: int) -> BaseResponse:
    reason = {"msgid": forms.PAUSED_BY, "params": {"email": _editor().email}}

    def action(db_session: Session) -> str | None:
        if not control.pause(db_session, campaign_id, reason):
            return None
        return str(_("Paused. Nothing more is sent until you continue."))

    return _act(campaign_id, action)


@bp.post(f"/{CAMPAIGN}/resume")
@auth.login_required()
def resume(campaign_id: int) -> BaseResponse:
    from campaigns.tasks import enqueue_batches

    def action(db_session: Session) -> str | None:
        if not control.resume(db_session, campaign_id, enqueue_batches):
            return None
        return str(_("Sending again, from where it stopped."))

    return _act(campaign_id, action)


@bp.post(f"/{CAMPAIGN}/cancel")
@auth.login_required()
def cancel(campaign_id: int) -> BaseResponse:
    def action(db_session: Session) -> str:
        count = f"{control.cancel(db_session, campaign_id):,}"
        message = N_(
            "Cancelled. %(count)s subscribers did not get the issue; a later send can still reach them."
        )
        return str(_(message, count=count))

    return _act(campaign_id, action)


@bp.post(f"/{CAMPAIGN}/approve")
@auth.login_required()
def approve(campaign_id: int) -> BaseResponse:
    from campaigns.tasks import enqueue_start

    editor = control.Editor(_editor().email, _editor().is_admin)

    def action(db_session: Session) -> str:
        control.approve(db_session, campaign_id, editor, enqueue_start)
        return str(_("Approved. The send starts at its time."))

    return _act(campaign_id, action)


# --- The report's file --------------------------------------------------------------------


@bp.get(f"/{CAMPAIGN}/failures.csv")
@auth.login_required()
def failures_csv(campaign_id: int) -> Response:
    """Every failed, bounced or retried delivery with the relay's reply, spreadsheet-safe."""
    campaign = _campaign_or_404(campaign_id)
    rows = progress.failures(db.session(), campaign.id, limit=None)
    # The file is written after the request's context is gone: nothing below may need it.
    local = zone()
    disposition = f'attachment; filename="send-{campaign.id}-failures.csv"'
    return Response(
        forms.failures_file(rows, local),
        mimetype="text/csv",
        headers={"Content-Disposition": disposition},
    )
