"""Editor accounts: argon2-hashed passwords, a rate-limited login, and role checks.

Roles: an *editor* imports, tags, previews and sends tests; an *admin* may also send to
subscribers and manage subscribers and settings. Every editor page uses ``login_required``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
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
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from core import db
from core.db import Base
from core.db import UTCDateTime
from core.db import utcnow

ROLES = ("editor", "admin")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# A real hash to verify against when the address is unknown, so both paths take as long.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

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
    editor.last_login_at = utcnow()
    return editor


def session_fingerprint(editor: Editor) -> str:
    """Changes when the password changes, which ends every session made with the old one."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, editor.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def log_in(editor: Editor) -> None:
    """Start a fresh session for ``editor`` (nothing from before the login survives)."""
    session.clear()
    session.permanent = True
    session["editor_id"] = editor.id
    session["editor_fp"] = session_fingerprint(editor)


def current_editor() -> Editor | None:
    """The editor of this request, checked against the database on every request."""
    if "editor" not in g:
        g.editor = _load_editor()
    editor: Editor | None = g.editor
    return editor


def _load_editor() -> Editor | None:
    editor_id = session.get("editor_id")
    if editor_id is None:
        return None
    editor = db.session().get(Editor, editor_id)
    if editor is None or not editor.active:
        return None
    if not hmac.compare_digest(session.get("editor_fp", ""), session_fingerprint(editor)):
        return None
    return editor


def login_required(role: str = "editor") -> Callable[[View], View]:
    """Protect a view: anonymous visitors go to the login page; editors lacking ``role`` get 403."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            editor = current_editor()
            if editor is None:
                return redirect(url_for("auth.login", next=request.full_path))
            if role == "admin" and not editor.is_admin:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
