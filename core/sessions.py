"""Editor sessions kept on the server, so that logging out really ends them.

The signed session cookie holds only a random session id; the database keeps its SHA-256
with the editor, when it started and was last used, the browser and the address. A
session is valid while its row exists and is neither idle longer than
``PERMANENT_SESSION_LIFETIME`` nor older than ``ABSOLUTE_LIFETIME``: logging out, "log out
everywhere", an administrator, a password change or a two-factor reset delete rows, and a
cookie copied before that opens nothing afterwards.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from datetime import timedelta

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from core import agents
from core.db import Base
from core.db import UTCDateTime
from core.db import utcnow

# However busy, a session ends a week after its login: a stolen cookie does not live for ever.
ABSOLUTE_LIFETIME = timedelta(days=7)
# "Last seen" is written at most this often, not on every page an editor opens.
TOUCH_EVERY = timedelta(minutes=1)
USER_AGENT_LENGTH = 255


class EditorSession(Base):
    __tablename__ = "editor_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the id in the cookie: a copy of this table opens no session.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("editor.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(USER_AGENT_LENGTH), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    db_session: Session, editor_id: int, user_agent: str, ip: str, idle: timedelta
) -> tuple[str, EditorSession]:
    """A new session of ``editor_id``: the id for the cookie and its row; the caller commits."""
    purge_expired(db_session, editor_id, idle)
    token = secrets.token_urlsafe(32)
    row = EditorSession(
        token_hash=_digest(token),
        editor_id=editor_id,
        user_agent=user_agent[:USER_AGENT_LENGTH],
        ip=ip[:45],
    )
    db_session.add(row)
    db_session.flush()
    return token, row


def find(db_session: Session, token: str, idle: timedelta) -> EditorSession | None:
    """The live session whose cookie holds ``token``, or None (ended or expired)."""
    row = db_session.scalars(
        select(EditorSession).where(EditorSession.token_hash == _digest(token))
    ).one_or_none()
    if row is None or not is_live(row, idle, utcnow()):
        return None
    return row


def is_live(row: EditorSession, idle: timedelta, now: datetime) -> bool:
    return row.last_seen_at + idle > now and row.created_at + ABSOLUTE_LIFETIME > now


def touch(row: EditorSession) -> bool:
    """Note that the session was used now; False when it was noted lately (nothing to write)."""
    now = utcnow()
    if now - row.last_seen_at < TOUCH_EVERY:
        return False
    row.last_seen_at = now
    return True


def live(db_session: Session, editor_id: int, idle: timedelta) -> list[EditorSession]:
    """The editor's sessions that still open pages, the most recently used first."""
    query = (
        select(EditorSession)
        .where(EditorSession.editor_id == editor_id)
        .order_by(EditorSession.last_seen_at.desc(), EditorSession.id.desc())
    )
    now = utcnow()
    return [row for row in db_session.scalars(query) if is_live(row, idle, now)]


def end(db_session: Session, editor_id: int, session_id: int) -> bool:
    """End one session of ``editor_id``; False if it has no such session (ended already)."""
    result = db_session.execute(
        delete(EditorSession).where(
            EditorSession.id == session_id, EditorSession.editor_id == editor_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


def end_token(db_session: Session, token: str) -> None:
    """End the session whose cookie holds ``token`` (logging out)."""
    db_session.execute(delete(EditorSession).where(EditorSession.token_hash == _digest(token)))


def end_all(db_session: Session, editor_id: int) -> int:
    """End every session of ``editor_id``; how many there were."""
    result = db_session.execute(delete(EditorSession).where(EditorSession.editor_id == editor_id))
    return int(getattr(result, "rowcount", 0))


def purge_expired(db_session: Session, editor_id: int, idle: timedelta) -> None:
    """Forget the editor's sessions that can no longer open anything."""
    now = utcnow()
    db_session.execute(
        delete(EditorSession).where(
            EditorSession.editor_id == editor_id,
            (EditorSession.last_seen_at < now - idle)
            | (EditorSession.created_at < now - ABSOLUTE_LIFETIME),
        )
    )


def describe_browser(user_agent: str) -> str:
    """A short name for a browser, such as "Firefox 133 · Linux"; the raw text if unknown."""
    return agents.short(user_agent) or user_agent[:60]
