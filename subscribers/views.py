"""The public pages: subscribe, confirm, preferences, email-me-my-link, unsubscribe.

Thin adapters: each view checks its form or link, calls subscribers.service (or queues a task
that does), commits, and answers with a page. Every change goes through a POST.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import Response as FlaskResponse
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import force_locale
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from limits import parse as parse_limit
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from core import db
from core import registry
from core import security
from core.security import csrf
from core.security import limiter
from mailer.tasks import enqueue_delivery
from subscribers import links
from subscribers import service
from subscribers import tasks
from subscribers import topics
from subscribers.forms import FORM_VERSION
from subscribers.forms import ButtonForm
from subscribers.forms import LinkForm
from subscribers.forms import PreferencesForm
from subscribers.forms import SubscribeForm
from subscribers.links import LinkError
from subscribers.models import Subscriber

bp = Blueprint("subscribers", __name__)
Page = str | Response | tuple[str, int]


def init_app(app: Flask) -> None:
    """Register the public and editor pages, and the editor's navigation entry."""
    from subscribers import admin
    from subscribers.cli import subscribers_cli

    app.register_blueprint(bp)
    app.cli.add_command(subscribers_cli)
    app.register_blueprint(admin.bp)
    registry.add_nav(app, "subscribers_admin.index", _l("Subscribers"), "admin")
    registry.add_card(app, "web/subscribers_admin/_home_card.html", _home_card, order=20)
    registry.add_tasks(app, "subscribers.tasks")
    seconds = float(app.config["SCHEDULER_SECONDS"])
    registry.add_beat(app, "requeue-signup-requests", "subscribers.tasks.requeue_requests", seconds)


# --- rate limits -------------------------------------------------------------------------


def _ip_limit() -> str:
    return str(current_app.config["SUBSCRIBE_RATE_LIMIT"])


def _address_limit() -> str:
    return str(current_app.config["SUBSCRIBE_ADDRESS_RATE_LIMIT"])


def _address_key() -> str:
    """Count requests per address however it is spelt (case, spaces, Unicode domain)."""
    raw = request.form.get("email", "")
    try:
        return "address:" + service.email_hash(service.normalise(raw))
    except service.AddressError:
        return "address:" + raw.strip().lower()[:254]


# Both limits are shared by /subscribe and /preferences/link: both send mail to an address.
limit_by_ip = limiter.shared_limit(_ip_limit, scope="subscribe-ip", methods=["POST"])


def check_address_limit(hashed: str | None = None) -> None:
    """Count a POST against its address (the form's, or the one ``hashed`` names), and
    answer 429 once the address has had its share.

    Counted here rather than with a limiter decorator, which would report this count in the
    X-RateLimit headers: anyone could then read how often an address was tried lately.
    """
    if request.method != "POST" or not limiter.enabled:
        return
    limit = parse_limit(_address_limit())
    key = f"address:{hashed}" if hashed is not None else _address_key()
    if not security.hit(limit, "subscribe-address", key):
        # The whole window, not when it frees up: that would tell when the address was tried.
        abort(429, retry_after=limit.get_expiry())


def _consent(source: str) -> service.Consent:
    return service.Consent(
        source=source,
        ip=request.remote_addr,
        user_agent=request.user_agent.string[:300] or None,
        form_version=FORM_VERSION,
    )


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"web/subscribers/{template}", **context), status


def _link_problem(error: LinkError) -> tuple[str, int]:
    status = 400 if error.reason in ("invalid", "erased") else 410
    return _render("link_problem.html", status, reason=error.reason)


def _blocked() -> tuple[str, int]:
    return _render("blocked.html", 409)


# Pages reached through a reader's own link: personal, so never kept by a browser or proxy.
PERSONAL_ENDPOINTS = frozenset(
    f"subscribers.{name}"
    for name in ("confirm", "preferences", "unsubscribe_page", "unsubscribe_action", "resubscribe")
)


@bp.after_request
def _personal_pages_are_not_stored(response: FlaskResponse) -> FlaskResponse:
    if request.endpoint in PERSONAL_ENDPOINTS:
        security.no_store(response)
    return response


# --- subscribe ---------------------------------------------------------------------------


@bp.route("/subscribe", methods=["GET", "POST"])
@limit_by_ip
def subscribe() -> Page:
    check_address_limit()
    form = SubscribeForm(language=str(get_locale()), topics=topics.topic_keys())
    if not form.validate_on_submit():
        return _render("subscribe.html", form=form, topics=topics)
    # A bot filled the hidden field: it gets the same page and nothing happens.
    if not form.website.data:
        choices = form.choices(organisation=form.organisation.data or None)
        if _first_of_its_kind(form.email.normalised, choices):
            tasks.store_request("signup", form.email.normalised, _consent("web"), choices)
    return _render("check_inbox.html", kind="subscribe")


# The same form sent again within this time (a double click, a reload that posts again, the
# back button) is answered with the same page but sends no second confirmation.
REPEAT_LIMIT = parse_limit("1 per 2 minutes")


def _first_of_its_kind(address: str, choices: service.Choices) -> bool:
    """True unless this address sent these very choices moments ago.

    Counted per address and choices, so a reader who corrects a choice gets a confirmation
    with the new choices; the state of the address plays no part (the page is the same).
    """
    if not limiter.enabled:
        return True
    sent = json.dumps(
        [
            address,
            list(choices.topics),
            choices.format,
            choices.locale,
            choices.name,
            choices.organisation,
        ],
        ensure_ascii=False,
    )
    key = hashlib.sha256(sent.encode()).hexdigest()
    return security.hit(REPEAT_LIMIT, "subscribe-repeat", key)


@bp.route("/preferences/link", methods=["GET", "POST"])
@limit_by_ip
def email_link() -> Page:
    check_address_limit()
    form = LinkForm()
    if not form.validate_on_submit():
        return _render("email_link.html", form=form)
    if not form.website.data:
        tasks.store_request("link", form.email.normalised, _consent("web"))
    return _render("check_inbox.html", kind="link")


# --- confirm -----------------------------------------------------------------------------


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> Page:
    """GET shows a button (mail scanners follow links); the POST of that button confirms."""
    try:
        subscriber = links.resolve(db.session(), "confirm", token)
    except LinkError as error:
        # Clicked again after it worked (or from a second device): that is no error.
        if error.subscriber is not None and error.subscriber.status == "active":
            return _render("confirmed.html")
        return _link_problem(error)
    form = ButtonForm()
    if not form.validate_on_submit():
        return _render("confirm.html", form=form)
    try:
        with db.transaction() as db_session:
            welcome = enqueue_delivery if current_app.config["WELCOME_EMAIL"] else None
            service.confirm(db_session, subscriber, _consent("email-link"), welcome)
    except service.Blocked:
        return _blocked()
    flash(_("Thank you: your subscription is confirmed. You can change your choices here."), "info")
    return redirect(url_for(".preferences", token=links.preferences_token(subscriber)))


# --- preferences -------------------------------------------------------------------------


def _preferences_data(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "name": subscriber.name or "",
        "organisation": subscriber.organisation or "",
        "topics": list(subscriber.topics),
        "format": subscriber.format,
        "language": subscriber.locale,
    }


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> Page:
    try:
        subscriber = links.resolve(db.session(), "preferences", token)
    except LinkError as error:
        return _link_problem(error)
    form = PreferencesForm(data=_preferences_data(subscriber))
    # The unsubscribe page's "digest instead" opens this page with the digest chosen; nothing
    # changes until the reader saves.
    offered = request.method == "GET" and request.args.get("format") == "digest"
    if offered:
        form.format.data = "digest"
    if form.validate_on_submit():
        with db.transaction() as db_session:
            choices = form.choices(organisation=form.organisation.data or "")
            changes = service.update_preferences(
                db_session, subscriber, choices, _consent("email-link")
            )
        # A reader who chose another language reads the result, and every later page, in it:
        # the message is worded in the new language and ?lang= on the redirect sets the cookie.
        if "locale" in changes:
            with force_locale(subscriber.locale):
                flash_saved(changes)
            return redirect(url_for(".preferences", token=token, lang=subscriber.locale))
        flash_saved(changes)
        return redirect(url_for(".preferences", token=token))
    return _render(
        "preferences.html",
        form=form,
        subscriber=subscriber,
        topics=topics,
        unsubscribe_token=links.unsubscribe_token(subscriber),
        button=ButtonForm(),
        blocked=service.is_blocked(db.session(), subscriber),
        offered=offered and subscriber.format != "digest",
    )


def flash_saved(changes: dict[str, Any]) -> None:
    """One message for one save: "Saved." and what changed, or that nothing did."""
    if not changes:
        flash(_("Nothing has changed."), "info")
        return
    flash(_("Saved. %(changes)s.", changes=_("; ").join(describe_changes(changes))), "change")


def describe_changes(changes: dict[str, Any]) -> list[str]:
    """One phrase per changed field, in the reader's language."""

    shown = {
        "topics": (_("Topics"), topics.topic_list),
        "format": (_("Format"), lambda key: str(topics.FORMAT_LABELS[key][0])),
        "locale": (_("Language"), lambda key: topics.LANGUAGE_LABELS[key]),
        "name": (_("Name"), lambda value: value or _("(none)")),
        "organisation": (_("Organisation"), lambda value: value or _("(none)")),
    }
    messages = []
    for field, (label, show) in shown.items():
        if field in changes:
            old, new = changes[field]
            messages.append(
                _("%(field)s: %(old)s → %(new)s", field=label, old=show(old), new=show(new))
            )
    return messages


# --- unsubscribe -------------------------------------------------------------------------


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Page:
    """One button, or, once left, an offer to come back. A GET never changes anything."""
    try:
        subscriber = links.resolve(db.session(), "unsubscribe", token)
    except LinkError as error:
        return _link_problem(error)
    template = "left.html" if subscriber.status != "active" else "unsubscribe.html"
    blocked = service.is_blocked(db.session(), subscriber)
    return _render(
        template,
        form=ButtonForm(),
        token=token,
        blocked=blocked,
        subscriber=subscriber,
        masked=masked(subscriber.email),
        preferences_token=links.preferences_token(subscriber),
    )


def masked(address: str) -> str:
    """The address as the unsubscribe page shows it: enough to recognise, not to copy."""
    local, _at, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else address


@bp.post("/unsubscribe/<token>")
@csrf.exempt
def unsubscribe_action(token: str) -> Page:
    """The page's button (CSRF-checked) and the RFC 8058 one-click POST (the token is the proof)."""
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    if not one_click:
        csrf.protect()
    try:
        subscriber = links.resolve(db.session(), "unsubscribe", token)
    except LinkError as error:
        if one_click and error.reason == "erased":
            # RFC 8058: the link works for good. This reader's data is gone and the address
            # gets nothing, so the honest answer to the mail provider is "done".
            return _render("left.html", form=ButtonForm(), token=token, blocked=True)
        return _link_problem(error)
    with db.transaction() as db_session:
        service.unsubscribe(db_session, subscriber, _consent("one-click" if one_click else "web"))
    if one_click:
        blocked = service.is_blocked(db.session(), subscriber)
        return _render("left.html", form=ButtonForm(), token=token, blocked=blocked)
    return redirect(url_for(".unsubscribe_page", token=token))


@bp.post("/resubscribe/<token>")
@limit_by_ip
def resubscribe(token: str) -> Page:
    """Come back from the page shown after leaving: a fresh confirmation goes to the address.

    The unsubscribe link may sit in an old or forwarded email, so pressing it does not bring
    anyone back by itself; the confirmation link, sent now, does.
    """
    try:
        subscriber = links.resolve(db.session(), "unsubscribe", token)
    except LinkError as error:
        return _link_problem(error)
    check_address_limit(subscriber.email_hash or "")
    try:
        with db.transaction() as db_session:
            service.request_resubscribe(db_session, subscriber, _consent("web"), enqueue_delivery)
    except service.Blocked:
        return _blocked()
    return _render("check_inbox.html", kind="resubscribe")


def _home_card(db_session: Session) -> dict[str, Any]:
    """The subscribers' card on the editor home: how many there are, by status."""
    from mailer.console import counts_by_status

    return {"counts": counts_by_status(db_session, Subscriber.status)}
