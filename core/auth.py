"""Editor accounts: argon2-hashed passwords, server-side sessions, a login that guessing
cannot use to lock anyone out, and role checks.

Roles: an *editor* imports, tags, previews and sends tests; an *admin* may also send to
subscribers and manage subscribers and accounts. Every editor page uses ``login_required``.
Sessions live in ``core.sessions``, two-factor login in ``core.totp``.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from limits import RateLimitItem
from limits import parse as parse_limit
from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from werkzeug.wrappers import Response

from core import db
from core import sessions
from core.db import Base
from core.db import UTCDateTime
from core.db import utcnow
from core.security import limiter

ROLES = ("editor", "admin")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# A real hash to verify against when the address is unknown, so both paths take as long.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

# The one thing an editor's cookie holds about their login: the id of a server-side session.
SESSION_KEY = "editor_session"
# Between a right password and the second step: the editor's id and when, in the cookie.
PENDING_KEY = "editor_pending"
SECOND_STEP_SECONDS = 300

View = TypeVar("View", bound=Callable[..., Any])


class Editor(Base):
    __tablename__ = "editor"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="editor")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor login: the TOTP secret (set while enrolling, kept once enabled), when it was
    # enabled, the last time step accepted (never accepted twice), and whether an
    # administrator requires it of this editor.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    totp_required: Mapped[bool] = mapped_column(default=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AccountError(ValueError):
    """An editor account cannot be created or changed as asked; the message says why."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def check_new_password(password: str) -> None:
    """Refuse passwords too short to be safe."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def create_editor(db_session: Session, email: str, password: str, role: str) -> Editor:
    """Add an editor account; the caller commits."""
    email = email.strip().lower()
    if role not in ROLES:
        raise AccountError(f"The role must be editor or admin, not {role!r}.")
    if "@" not in email or any(ch.isspace() for ch in email):
        raise AccountError(f"{email!r} is not an email address.")
    check_new_password(password)
    if find_editor(db_session, email) is not None:
        raise AccountError(f"An editor account for {email} already exists.")
    editor = Editor(email=email, password_hash=hash_password(password), role=role)
    db_session.add(editor)
    return editor


def find_editor(db_session: Session, email: str) -> Editor | None:
    """The account for ``email`` (case-insensitive), or None."""
    query = select(Editor).where(func.lower(Editor.email) == email.strip().lower())
    return db_session.scalars(query).one_or_none()


def authenticate(db_session: Session, email: str, password: str) -> Editor | None:
    """The active editor whose password this is, or None; takes as long for unknown addresses."""
    editor = find_editor(db_session, email)
    try:
        _hasher.verify(editor.password_hash if editor else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if editor is None or not editor.active:
        return None
    if _hasher.check_needs_rehash(editor.password_hash):
        editor.password_hash = hash_password(password)
    return editor


def set_password(db_session: Session, editor: Editor, password: str) -> None:
    """Give ``editor`` a new password and end every session they have; the caller commits."""
    check_new_password(password)
    editor.password_hash = hash_password(password)
    sessions.end_all(db_session, editor.id)


def check_password(editor: Editor, password: str) -> bool:
    """Whether ``password`` is the editor's (to confirm a change they ask for)."""
    try:
        return bool(_hasher.verify(editor.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def idle_lifetime() -> timedelta:
    lifetime = current_app.permanent_session_lifetime
    return lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime)


def log_in(db_session: Session, editor: Editor) -> None:
    """Start a fresh session for ``editor``: nothing from before the login survives, and only
    the new session's id goes into the cookie. The caller commits."""
    session.clear()
    session.permanent = True
    user_agent = request.headers.get("User-Agent", "")
    token, _row = sessions.start(
        db_session, editor.id, user_agent, request.remote_addr or "", idle_lifetime()
    )
    editor.last_login_at = utcnow()
    session[SESSION_KEY] = token
    g.editor = editor


def log_out(db_session: Session) -> None:
    """End this browser's session on the server and forget the cookie's contents."""
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        sessions.end_token(db_session, token)
    session.clear()
    g.editor = None


def await_second_step(editor: Editor) -> None:
    """The password was right and the editor has two-factor login: remember that, for a few
    minutes, in a fresh cookie session that opens no page yet."""
    session.clear()
    session[PENDING_KEY] = [editor.id, int(time.time())]


def pending_editor(db_session: Session) -> Editor | None:
    """The editor who gave the right password in this browser lately and owes a code."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, list) or len(pending) != 2:
        return None
    editor_id, since = pending
    if not isinstance(since, int) or time.time() - since > SECOND_STEP_SECONDS:
        return None
    editor = db_session.get(Editor, editor_id)
    if editor is None or not editor.active or editor.totp_enabled_at is None:
        return None
    return editor


def current_session() -> sessions.EditorSession | None:
    """This request's server-side session row, or None when nobody is logged in."""
    current_editor()
    row: sessions.EditorSession | None = g.get("editor_session")
    return row


def current_editor() -> Editor | None:
    """The editor of this request, checked against the database on every request."""
    if "editor" not in g:
        g.editor = _load_editor()
    editor: Editor | None = g.editor
    return editor


def _load_editor() -> Editor | None:
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    row = sessions.find(db.session(), token, idle_lifetime())
    if row is None:
        return None
    editor = db.session().get(Editor, row.editor_id)
    if editor is None or not editor.active:
        return None
    g.editor_session = row
    return editor


def must_enrol(editor: Editor) -> bool:
    """An administrator requires two-factor login of this editor, who has not set it up."""
    return editor.totp_required and editor.totp_enabled_at is None


def gate(role: str = "editor", enrolling: bool = False) -> Response | None:
    """The response that keeps this request out, or None to let it in.

    Anonymous visitors go to the login page; an editor whose two-factor login is required
    but not set up goes to set it up (unless ``enrolling``); lacking ``role`` is 403.
    """
    editor = current_editor()
    if editor is None:
        return redirect(url_for("auth.login", next=request.full_path))
    if must_enrol(editor) and not enrolling:
        return redirect(url_for("account.two_factor"))
    if role == "admin" and not editor.is_admin:
        abort(403)
    row = current_session()
    if row is not None and sessions.touch(row):
        db.session().commit()
    return None


def login_required(role: str = "editor", enrolling: bool = False) -> Callable[[View], View]:
    """Protect a view with ``gate``: only logged-in editors with ``role`` see it."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            refusal = gate(role, enrolling)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


# --- Guessing passwords -------------------------------------------------------------------
#
# Failed logins are counted per address tried (from any IP) and per address and client. An
# address past LOGIN_ACCOUNT_RATE_LIMIT failures refuses every client that has already failed
# on it, so guessing stays capped, but a client that has not failed still has its password
# checked: thirty wrong guesses from elsewhere cannot lock the editor out. Only failures
# count, so an editor's own logins never use up the limit.


def client_key(address: str | None) -> str:
    """The client a failure is counted against: its IP, or its /64 network for IPv6 (one
    host usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _limits() -> tuple[RateLimitItem, RateLimitItem]:
    account = parse_limit(str(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]))
    one_failure = type(account)(1, account.multiples, account.namespace)
    return account, one_failure


def login_refused(email: str, client: str) -> bool:
    """Whether to refuse this attempt unread: the address is under attack and this client
    has failed on it already."""
    if not limiter.enabled:
        return False
    account, one_failure = _limits()
    address = email.strip().lower()
    under_attack = not limiter.limiter.test(account, "login-fail-account", address)
    return under_attack and not limiter.limiter.test(
        one_failure, "login-fail-client", address, client
    )


def record_login_failure(email: str, client: str) -> None:
    """Count a wrong password (or second-step code) for the address and the client."""
    if not limiter.enabled:
        return
    account, one_failure = _limits()
    address = email.strip().lower()
    limiter.limiter.hit(account, "login-fail-account", address)
    limiter.limiter.hit(one_failure, "login-fail-client", address, client)


def _code_limit() -> RateLimitItem:
    # Whoever reaches the second step knows the password; past ten wrong codes in an hour
    # for an editor, only clients that have not failed on that editor are still heard.
    return parse_limit("10 per hour")


def code_refused(editor_id: int, client: str) -> bool:
    """Whether to refuse this client's second-step codes for the editor for now: the editor
    is under attack and this client has failed on them already. As with passwords, an
    attacker who knows the password cannot lock the real editor out of the second step."""
    if not limiter.enabled:
        return False
    limit = _code_limit()
    one_failure = type(limit)(1, limit.multiples, limit.namespace)
    under_attack = not limiter.limiter.test(limit, "login-code-fail", str(editor_id))
    return under_attack and not limiter.limiter.test(
        one_failure, "login-code-client", str(editor_id), client
    )


def record_code_failure(editor_id: int, client: str) -> None:
    if limiter.enabled:
        limit = _code_limit()
        one_failure = type(limit)(1, limit.multiples, limit.namespace)
        limiter.limiter.hit(limit, "login-code-fail", str(editor_id))
        limiter.limiter.hit(one_failure, "login-code-client", str(editor_id), client)
