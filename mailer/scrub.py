"""Forgetting an address in the outbox, for a package that erases a person's data.

The outbox table belongs to the mailer, so the packages that queue single emails ask here
rather than writing into it themselves. Rows are kept (that an email was queued, and when)
but lose the address and the values their builder would have filled in.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailer.models import OutboxMessage

# A reserved top-level domain (RFC 2606): no address in it can ever receive mail.
ERASED_DOMAIN = "erased.invalid"
ERASED_ADDRESS = f"erased@{ERASED_DOMAIN}"


def forget_address(db_session: Session, address: str, *, kinds: Collection[str]) -> int:
    """Scrub the single emails of ``kinds`` to ``address``; returns how many rows changed.

    Each row gets a placeholder address and no parameters, and is marked failed, so that one
    still queued is never sent. Only ``kinds`` are touched: the caller names the emails it
    sends, and the package that sends the others keeps their record.
    """
    result = db_session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.to_address == address, OutboxMessage.kind.in_(tuple(kinds)))
        .values(to_address=ERASED_ADDRESS, params={}, status="failed", smtp_reply="address erased")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
