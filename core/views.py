"""The editor's door: login, logout, the editor home page with a test send."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from limits import parse as parse_limit
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from core import auth
from core import db
from core.checks import check_services
from core.config import ConfigError
from core.forms import LoginForm
from core.forms import TestSendForm
from core.security import limiter
from mailer import outbox
from mailer.models import OutboxMessage
from mailer.tasks import enqueue_delivery

bp = Blueprint("auth", __name__, url_prefix="/editor")
public = Blueprint("public", __name__)


@public.get("/")
def index() -> Response:
    """Readers arriving at the site's root land on the subscription page."""
    return redirect(url_for("subscribers.subscribe"))


@public.get("/healthz")
@limiter.exempt
def health() -> tuple[str, int]:
    """For load balancers and compose: 200 when the database and Redis answer, else 503."""
    try:
        check_services(current_app._get_current_object())  # type: ignore[attr-defined]
    except ConfigError as error:
        return str(error), 503
    return "ok", 200


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def safe_next(target: str | None) -> str:
    """Follow ``next`` only to a path on this site, never to another host."""
    if not target:
        return url_for("auth.home")
    parts = urlsplit(target)
    # Browsers read a backslash as a slash and drop tabs and newlines, so a backslash or a
    # control character could turn a path into another host; Werkzeug percent-encodes them in
    # Location today, but the check must not depend on that.
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(character) < 0x21 or ord(character) == 0x7F for character in target)
    ):
        return url_for("auth.home")
    return target


def check_account_limit(email: str) -> None:
    """Count a login attempt against the address tried, from whatever IP it comes: 429 past the limit.

    Counted by hand, not with a limiter decorator, so no response header tells anyone how
    often an address was tried lately.
    """
    if not limiter.enabled:
        return
    limit = parse_limit(str(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]))
    if not limiter.limiter.hit(limit, "login-account", email.strip().lower()):
        abort(429)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        check_account_limit(form.email.data or "")
        with db.transaction() as db_session:
            editor = auth.authenticate(db_session, form.email.data or "", form.password.data or "")
        if editor is not None:
            auth.log_in(editor)
            return redirect(safe_next(request.args.get("next")))
        flash(_("The email or password is not right."), "error")
    return render_template("web/editor/login.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/", methods=["GET", "POST"])
@auth.login_required()
def home() -> str | Response:
    form = TestSendForm()
    editor = auth.current_editor()
    assert editor is not None
    if form.validate_on_submit():
        with db.transaction() as db_session:
            outbox.queue(
                db_session,
                "test",
                (form.address.data or "").strip(),
                form.locale.data or "zh",
                enqueue_delivery,
                requested_by=editor.email,
            )
        flash(_("The test email is queued. Its status is shown below."), "info")
        return redirect(url_for("auth.home"))
    recent = list(
        db.session().scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "test")
            .order_by(OutboxMessage.id.desc())
            .limit(10)
        )
    )
    return render_template(
        "web/editor/home.html",
        form=form,
        editor=editor,
        recent=recent,
        counts=overview(db.session()),
        # While a test email is on its way the page refreshes itself (no script needed).
        refresh=any(message.status in ("queued", "sending") for message in recent),
    )


def overview(db_session: Session) -> dict[str, dict[str, int]]:
    """How many issues, subscribers and single emails there are, by status."""
    from mailer.models import Issue
    from subscribers.models import Subscriber

    def by_status(column: Any) -> dict[str, int]:
        rows = db_session.execute(select(column, func.count()).group_by(column))
        return {str(status): int(count) for status, count in rows}

    return {
        "issues": by_status(Issue.status),
        "subscribers": by_status(Subscriber.status),
        "emails": by_status(OutboxMessage.status),
    }
