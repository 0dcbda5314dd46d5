"""An editor's own account (sessions, password, two-factor login), the second step of a
login, and the administrators' page of every editor account.

Every change is a POST with a CSRF token; pages that show a secret or recovery codes are
never stored by the browser or a proxy.
"""

from __future__ import annotations

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
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from core import auth
from core import db
from core import sessions
from core import totp
from core.db import utcnow
from core.forms import ButtonForm
from core.forms import CodeForm
from core.forms import EnrolForm
from core.forms import PasswordChangeForm
from core.forms import PasswordCheckForm
from core.i18n import sentences
from core.security import limiter
from core.views import safe_next

bp = Blueprint("account", __name__, url_prefix="/editor")
# Ids beyond a 32-bit integer name nothing, and must not reach the database as such.
_LARGEST_ID = 2**31 - 1


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _me() -> auth.Editor:
    editor = auth.current_editor()
    assert editor is not None, "only views behind login_required ask"
    return editor


def _private(page: str) -> Response:
    """A page with a secret on it: no browser or proxy keeps a copy."""
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- The second step of a login -----------------------------------------------------------


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login_code() -> str | Response:
    """After the right password: a code from the editor's app, or one recovery code."""
    db_session = db.session()
    editor = auth.pending_editor(db_session)
    if editor is None:
        flash(_("Log in again: the first step is more than five minutes old."), "error")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        client = auth.client_key(request.remote_addr)
        if auth.code_refused(editor.id, client):
            session.clear()
            abort(429)
        proof = totp.prove(db_session, editor, form.code.data or "")
        if proof is not None:
            auth.log_in(db_session, editor)
            db_session.commit()
            _tell_recovery(proof)
            return redirect(safe_next(request.args.get("next")))
        db_session.rollback()
        auth.record_code_failure(editor.id, client)
        form.code.errors = [_("This code is not right, or was used already. Try the newest one.")]
    return render_template("web/editor/login_code.html", form=form)


def _tell_recovery(proof: totp.Proof) -> None:
    if proof.kind != "recovery":
        return
    message = _("You used a recovery code; %(count)d left.", count=proof.recovery_left)
    if proof.recovery_left <= 3:
        message = sentences(message, _("Make new ones on the two-factor page."))
    flash(message, "info")


# --- The editor's own account -------------------------------------------------------------


@bp.get("/account")
@auth.login_required()
def index() -> str:
    editor = _me()
    return _account_page(editor, PasswordChangeForm())


def _account_page(editor: auth.Editor, password_form: PasswordChangeForm) -> str:
    db_session = db.session()
    current = auth.current_session()
    return render_template(
        "web/editor/account.html",
        editor=editor,
        sessions=sessions.live(db_session, editor.id, auth.idle_lifetime()),
        current_id=current.id if current else None,
        describe=sessions.describe_browser,
        password_form=password_form,
        button=ButtonForm(),
        recovery_left=totp.recovery_left(db_session, editor.id),
    )


@bp.post("/account/password")
@auth.login_required()
def change_password() -> str | Response:
    """A new password ends every session, this one included; this browser gets a new one."""
    editor, form = _me(), PasswordChangeForm()
    valid = form.validate_on_submit()
    if valid and not auth.check_password(editor, form.current.data or ""):
        form.current.errors = [_("This is not your current password.")]
    elif valid:
        with db.transaction() as db_session:
            auth.set_password(db_session, editor, form.new.data or "")
            auth.log_in(db_session, editor)
        flash(_("Password changed. Every other session has ended."), "info")
        return redirect(url_for("account.index"))
    return _account_page(editor, form)


@bp.post("/account/sessions/<int:session_id>/end")
@auth.login_required()
def end_session(session_id: int) -> Response:
    editor, current = _me(), auth.current_session()
    if ButtonForm().validate_on_submit() and session_id <= _LARGEST_ID:
        with db.transaction() as db_session:
            ended = sessions.end(db_session, editor.id, session_id)
        if current is not None and current.id == session_id:
            session.clear()
            flash(_("You have logged out."), "info")
            return redirect(url_for("auth.login"))
        flash(_("Session ended.") if ended else _("That session had ended already."), "info")
    return redirect(url_for("account.index"))


@bp.post("/account/sessions/end-all")
@auth.login_required()
def end_all_sessions() -> Response:
    """Log out everywhere: every session of this editor ends, this one too."""
    if not ButtonForm().validate_on_submit():
        return redirect(url_for("account.index"))
    with db.transaction() as db_session:
        count = sessions.end_all(db_session, _me().id)
    session.clear()
    flash(_("Logged out everywhere (%(count)d sessions).", count=count), "info")
    return redirect(url_for("auth.login"))


# --- Two-factor login ---------------------------------------------------------------------


@bp.get("/account/two-factor")
@auth.login_required(enrolling=True)
def two_factor() -> Response:
    editor = _me()
    if editor.totp_enabled_at is not None:
        return _private(_two_factor_status(editor))
    return _private(_enrol_page(editor, EnrolForm()))


def _enrol_page(editor: auth.Editor, form: EnrolForm) -> str:
    with db.transaction():
        secret = totp.pending_secret(editor)
    uri = totp.provisioning_uri(editor, str(current_app.config["MAIL_FROM_NAME"]))
    return render_template(
        "web/editor/two_factor_enrol.html",
        editor=editor,
        form=form,
        qr=totp.qr_data_uri(uri),
        secret=totp.grouped(secret),
        required=editor.totp_required,
    )


def _two_factor_status(editor: auth.Editor) -> str:
    return render_template(
        "web/editor/two_factor.html",
        editor=editor,
        recovery_left=totp.recovery_left(db.session(), editor.id),
        code_form=CodeForm(),
        password_form=PasswordCheckForm(),
    )


@bp.post("/account/two-factor/enable")
@auth.login_required(enrolling=True)
def enable_two_factor() -> Response:
    """A right code turns it on, shows the recovery codes once, and ends other sessions."""
    editor, form = _me(), EnrolForm()
    if editor.totp_enabled_at is not None:
        return redirect(url_for("account.two_factor"))
    codes = None
    if form.validate_on_submit():
        with db.transaction() as db_session:
            codes = totp.enable(db_session, editor, form.code.data or "")
            current = auth.current_session()
            if codes is not None and current is not None:
                _end_others(db_session, editor.id, current.id)
    if codes is None:
        form.code.errors = [_("This code is not right. Enter the newest code your app shows.")]
        return _private(_enrol_page(editor, form))
    return _private(render_template("web/editor/recovery_codes.html", codes=codes, new=True))


def _end_others(db_session: Session, editor_id: int, keep: int) -> None:
    for row in sessions.live(db_session, editor_id, auth.idle_lifetime()):
        if row.id != keep:
            sessions.end(db_session, editor_id, row.id)


@bp.post("/account/two-factor/recovery-codes")
@auth.login_required()
def new_recovery_codes() -> Response:
    """New recovery codes replace the old ones; a code from the app proves it is the editor."""
    editor, form = _me(), CodeForm()
    if not form.validate_on_submit() or editor.totp_enabled_at is None:
        return redirect(url_for("account.two_factor"))
    with db.transaction() as db_session:
        codes = (
            totp.new_recovery_codes(db_session, editor)
            if totp.check_code(db_session, editor, form.code.data or "")
            else None
        )
    if codes is None:
        flash(_("This code is not right. Enter the newest code your app shows."), "error")
        return redirect(url_for("account.two_factor"))
    return _private(render_template("web/editor/recovery_codes.html", codes=codes, new=False))


@bp.post("/account/two-factor/disable")
@auth.login_required()
def disable_two_factor() -> Response:
    editor, form = _me(), PasswordCheckForm()
    if editor.totp_required:
        flash(_("An administrator requires two-factor login of your account."), "error")
    elif form.validate_on_submit() and auth.check_password(editor, form.password.data or ""):
        with db.transaction() as db_session:
            totp.disable(db_session, editor)
        flash(_("Two-factor login is off."), "info")
        return redirect(url_for("account.index"))
    elif form.is_submitted():
        flash(_("This is not your current password."), "error")
    return redirect(url_for("account.two_factor"))


# --- Every account (administrators) -------------------------------------------------------


@bp.get("/accounts")
@auth.login_required("admin")
def accounts() -> str:
    db_session = db.session()
    editors = db_session.scalars(select(auth.Editor).order_by(auth.Editor.email)).all()
    return render_template(
        "web/editor/accounts.html",
        editors=editors,
        counts=_live_counts(db_session),
        button=ButtonForm(),
        me=_me(),
    )


def _live_counts(db_session: Session) -> dict[int, int]:
    idle = auth.idle_lifetime()
    cutoff = utcnow() - idle
    query = (
        select(sessions.EditorSession.editor_id, func.count())
        .where(
            sessions.EditorSession.last_seen_at > cutoff,
            sessions.EditorSession.created_at > utcnow() - sessions.ABSOLUTE_LIFETIME,
        )
        .group_by(sessions.EditorSession.editor_id)
    )
    return {editor_id: int(count) for editor_id, count in db_session.execute(query).all()}


def _other(editor_id: int) -> auth.Editor:
    """The account an administrator acts on, or 404."""
    editor = db.session().get(auth.Editor, editor_id) if editor_id <= _LARGEST_ID else None
    if editor is None:
        abort(404)
    return editor


@bp.post("/accounts/<int:editor_id>/end-sessions")
@auth.login_required("admin")
def end_sessions_of(editor_id: int) -> Response:
    editor = _other(editor_id)
    if ButtonForm().validate_on_submit():
        with db.transaction() as db_session:
            count = sessions.end_all(db_session, editor.id)
        flash(_("%(email)s: %(count)d sessions ended.", email=editor.email, count=count), "info")
    return redirect(url_for("account.accounts"))


@bp.post("/accounts/<int:editor_id>/two-factor")
@auth.login_required("admin")
def require_two_factor(editor_id: int) -> Response:
    """Require two-factor login of an editor (they set it up at their next page) or not."""
    editor = _other(editor_id)
    if ButtonForm().validate_on_submit():
        with db.transaction():
            editor.totp_required = request.form.get("required") == "1"
        message = (
            _("%(email)s must now use two-factor login.", email=editor.email)
            if editor.totp_required
            else _("%(email)s may log in without two-factor login.", email=editor.email)
        )
        flash(message, "info")
    return redirect(url_for("account.accounts"))


@bp.post("/accounts/<int:editor_id>/reset-two-factor")
@auth.login_required("admin")
def reset_two_factor(editor_id: int) -> Response:
    """For an editor who lost their phone and codes: off, and every session of theirs ends."""
    editor = _other(editor_id)
    if ButtonForm().validate_on_submit():
        with db.transaction() as db_session:
            totp.disable(db_session, editor)
            sessions.end_all(db_session, editor.id)
        flash(_("%(email)s: two-factor login reset.", email=editor.email), "info")
    return redirect(url_for("account.accounts"))
