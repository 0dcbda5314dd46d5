"""The editor's door: login and logout; and the site's root and health check."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from core import auth
from core import db
from core import registry
from core.checks import ServiceDown
from core.checks import check_services
from core.forms import LoginForm
from core.security import limiter

bp = Blueprint("auth", __name__, url_prefix="/editor")
public = Blueprint("public", __name__)


@public.get("/")
def index() -> Response:
    """Readers arriving at the site's root land on the subscription page."""
    return redirect(url_for("subscribers.subscribe"))


# Each /healthz request opens a database connection and a Redis connection: enough for any
# load balancer's polling, too little for anyone to use it to load the services.
HEALTH_RATE_LIMIT = "60 per minute"


@public.get("/healthz")
@limiter.limit(HEALTH_RATE_LIMIT)
def health() -> tuple[str, int, dict[str, str]]:
    """For load balancers and compose: 200 when the database and Redis answer, else 503 with
    the name of the one that does not (never its address: the page is public)."""
    headers = {"Cache-Control": "no-store"}
    if current_app.config.get("INSTANCE_TOKEN"):
        # make demo asks this to know that the server answering is the one it started.
        headers["X-Newsletter-Instance"] = str(current_app.config["INSTANCE_TOKEN"])
    try:
        check_services(current_app._get_current_object())  # type: ignore[attr-defined]
    except ServiceDown as error:
        current_app.logger.warning("health check: %s", error)
        return f"down: {error.component}", 503, headers
    return "ok", 200, headers


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def safe_next(target: str | None) -> str:
    """Follow ``next`` only to a path on this site, never to another host."""
    if not target:
        return url_for(registry.of(current_app).home)
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
        return url_for(registry.of(current_app).home)
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        email, client = form.email.data or "", auth.client_key(request.remote_addr)
        if auth.login_refused(email, client):
            abort(429)
        with db.transaction() as db_session:
            editor = auth.authenticate(db_session, email, form.password.data or "")
            if editor is not None and editor.totp_enabled_at is None:
                auth.log_in(db_session, editor)
        if editor is None:
            auth.record_login_failure(email, client)
            flash(_("The email or password is not right."), "error")
        elif editor.totp_enabled_at is not None:
            auth.await_second_step(editor)
            return redirect(url_for("account.login_code", next=request.args.get("next")))
        else:
            return redirect(safe_next(request.args.get("next")))
    return render_template("web/editor/login.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    with db.transaction() as db_session:
        auth.log_out(db_session)
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))
