"""Two-factor login for editors: TOTP codes from an authenticator app, and recovery codes.

An editor turns it on by scanning a QR code (or typing the secret) and entering a code the
app shows; they then get ten one-time recovery codes, stored only as SHA-256 digests. A
code is accepted for 30 seconds either side of its own step, and a step already used is
never accepted again, so a code seen over someone's shoulder cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import NamedTuple

import pyotp
import segno
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from core.auth import Editor
from core.db import Base
from core.db import UTCDateTime
from core.db import utcnow

RECOVERY_CODES = 10
# Lower-case letters and digits without the look-alikes 0/o, 1/l/i: easy to copy from paper.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_CODE = re.compile(r"[0-9]{6}")


class RecoveryCode(Base):
    __tablename__ = "editor_recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("editor.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Proof(NamedTuple):
    """How the second step was passed: "code" or "recovery", and recovery codes left."""

    kind: str
    recovery_left: int


def pending_secret(editor: Editor) -> str:
    """The secret the editor is enrolling with, made on first use; the caller commits."""
    assert editor.totp_enabled_at is None, "only an editor without two-factor login enrols"
    if editor.totp_secret is None:
        editor.totp_secret = pyotp.random_base32()
    return editor.totp_secret


def provisioning_uri(editor: Editor, issuer: str) -> str:
    assert editor.totp_secret is not None
    return pyotp.TOTP(editor.totp_secret).provisioning_uri(name=editor.email, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG data URI (the page's policy allows data: images)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def grouped(secret: str) -> str:
    """The secret in groups of four, as people type it into an app."""
    return " ".join(secret[start : start + 4] for start in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (30 s) at which ``code`` is right, one step of clock drift allowed."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def check_code(db_session: Session, editor: Editor, code: str) -> bool:
    """Accept a fresh code from the editor's app once; the caller commits the used step.

    The step is taken with a conditional UPDATE, so two requests racing with one code
    cannot both pass: the second waits for the first's row lock (or SQLite's write lock)
    and then finds the step used.
    """
    code = normalise(code)
    if editor.totp_secret is None or not _CODE.fullmatch(code):
        return False
    step = matching_step(editor.totp_secret, code, utcnow())
    if step is None:
        return False
    taken = db_session.execute(
        update(Editor)
        .where(
            Editor.id == editor.id,
            or_(Editor.totp_last_step.is_(None), Editor.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(editor, "totp_last_step", step)
    return True


def enable(db_session: Session, editor: Editor, code: str) -> list[str] | None:
    """Turn two-factor login on if ``code`` is right: the new recovery codes, else None."""
    if editor.totp_enabled_at is not None or not check_code(db_session, editor, code):
        return None
    editor.totp_enabled_at = utcnow()
    return new_recovery_codes(db_session, editor)


def disable(db_session: Session, editor: Editor) -> None:
    """Forget the secret and the recovery codes (turning it off, or an administrator's reset)."""
    editor.totp_secret = None
    editor.totp_enabled_at = None
    editor.totp_last_step = None
    db_session.execute(delete(RecoveryCode).where(RecoveryCode.editor_id == editor.id))


def new_recovery_codes(db_session: Session, editor: Editor) -> list[str]:
    """Replace the editor's recovery codes with ten new ones, returned once in clear."""
    db_session.execute(delete(RecoveryCode).where(RecoveryCode.editor_id == editor.id))
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    db_session.add_all(RecoveryCode(editor_id=editor.id, code_hash=_digest(c)) for c in codes)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def recovery_left(db_session: Session, editor_id: int) -> int:
    query = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.editor_id == editor_id, RecoveryCode.used_at.is_(None)
    )
    return int(db_session.scalar(query) or 0)


def use_recovery_code(db_session: Session, editor: Editor, code: str) -> bool:
    """Spend one unused recovery code; a used one is refused. The caller commits."""
    row = db_session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.editor_id == editor.id,
            RecoveryCode.code_hash == _digest(normalise(code)),
            RecoveryCode.used_at.is_(None),
        )
    ).first()
    if row is None:
        return False
    # Spent only if still unspent when the UPDATE runs: a parallel request with the same
    # code finds it used.
    spent = db_session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]


def prove(db_session: Session, editor: Editor, answer: str) -> Proof | None:
    """Pass the second step with a code from the app or a recovery code, or None."""
    if check_code(db_session, editor, answer):
        return Proof("code", recovery_left(db_session, editor.id))
    if use_recovery_code(db_session, editor, answer):
        db_session.flush()
        return Proof("recovery", recovery_left(db_session, editor.id))
    return None


def normalise(answer: str) -> str:
    """What was typed, without spaces or hyphens, in lower case."""
    return re.sub(r"[\s\-]", "", answer).lower()


def _digest(code: str) -> str:
    # Ten random characters (about 50 bits) need no slow hash: nobody can try them all.
    return hashlib.sha256(code.encode()).hexdigest()
