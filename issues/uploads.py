"""Uploaded issue files waiting for the editor's confirmation, in the database.

An upload waits in a ``PendingUpload`` row, found by the random token kept in the editor's
session and by the editor's id, so any web process can serve the confirmation. Plain
functions over a caller's session; none of them commits.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from issues.models import PendingUpload

FILENAME_LIMIT = 255
# An upload not confirmed within this time is forgotten.
UPLOAD_MAX_AGE = timedelta(hours=1)


def keep_upload(db_session: Session, editor_id: int, filename: str, data: bytes) -> str:
    """Keep an uploaded file for ``editor_id`` and return its new random token.

    Uploads nobody confirmed within ``UPLOAD_MAX_AGE`` are deleted first, whoever made them,
    so abandoned previews do not pile up.
    """
    db_session.execute(delete(PendingUpload).where(PendingUpload.created_at < _upload_cutoff()))
    token = secrets.token_urlsafe(24)
    # A long name keeps its end, where the extension tells Markdown from plain text.
    db_session.add(
        PendingUpload(
            token=token, editor_id=editor_id, filename=filename[-FILENAME_LIMIT:], data=data
        )
    )
    return token


def find_upload(db_session: Session, token: str, editor_id: int) -> PendingUpload | None:
    """The editor's upload with ``token``; None when it expired, is gone or is another's."""
    return db_session.scalars(
        select(PendingUpload).where(
            PendingUpload.token == token,
            PendingUpload.editor_id == editor_id,
            PendingUpload.created_at >= _upload_cutoff(),
        )
    ).one_or_none()


def drop_upload(db_session: Session, token: str, editor_id: int) -> bool:
    """Forget the editor's upload with ``token``; False when there was none to forget."""
    statement = delete(PendingUpload).where(
        PendingUpload.token == token, PendingUpload.editor_id == editor_id
    )
    deleted = cast("CursorResult[Any]", db_session.execute(statement))
    return deleted.rowcount > 0


def _upload_cutoff() -> datetime:
    return utcnow() - UPLOAD_MAX_AGE
