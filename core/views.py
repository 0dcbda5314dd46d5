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
from flask import session
from flask import url_for
from flask_babel import gettext as _
from limits import parse as parse_limit
from werkzeug.wrappers import Response

from core import auth
from core import db
from core import registry
from core.checks import check_services
from core.config import ConfigError
from core.forms import LoginForm
from core.security import limiter

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
