"""The delivery state that single emails and campaign deliveries share, and its retry policy.

A row that carries ``DeliveryState`` moves queued → sending (claimed) → sent, or back to a
waiting status after a temporary failure (``retry_status``: the outbox says "queued", the
campaign ledger "retry"), or to failed. The functions here are the only place that decides
what a reply means for the row, so the outbox and the campaign ledger cannot drift apart.
None of them commits: the caller decides how many outcomes go into one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar

from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from core.db import UTCDateTime
from core.db import utcnow
from mailer.smtp import Accepted
from mailer.smtp import DeliveryFailure
from mailer.smtp import PermanentFailure

# A claim older than this is presumed dead (its worker was killed) and the row is retried.
# It is never shorter than the task time limit plus a margin (see ``claim_lease``): a claim
# held by a task that may still be running must not be handed to a second worker.
CLAIM_LEASE = timedelta(minutes=10)
LEASE_MARGIN = timedelta(minutes=1)
# A due row whose task never ran (the broker was down at enqueue time) is enqueued again.
QUEUED_GRACE = timedelta(minutes=2)
MAX_ATTEMPTS = 6
MAX_BACKOFF_SECONDS = 300


class DeliveryState:
    """The columns of one message on its way: status, tries, claim, and the relay's reply."""

    # The status of a row waiting for its next try after a temporary failure.
    retry_status: ClassVar[str] = "queued"

    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    smtp_code: Mapped[int | None]
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a waiting row is due: now for a new one, later after a temporary failure.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """How long to wait before try number ``attempts + 1``: base, 2×, 4×…, at most 5 minutes."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def claim_lease(config: Mapping[str, Any]) -> timedelta:
    """How long a claim is presumed alive: CLAIM_LEASE, or longer than any task may run."""
    return max(CLAIM_LEASE, timedelta(seconds=int(config["TASK_TIME_LIMIT"])) + LEASE_MARGIN)


def record(
    row: DeliveryState, result: Accepted | DeliveryFailure, config: Mapping[str, Any]
) -> str:
    """Write the relay's answer into ``row``: sent; failed for good (5xx, or too many tries);
    or waiting for a later try. Returns the new status."""
    row.smtp_code, row.smtp_reply = result.code, result.reply[:2000]
    if isinstance(result, Accepted):
        row.status, row.sent_at = "sent", utcnow()
    elif isinstance(result, PermanentFailure) or row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
    else:
        wait_for_retry(row, config)
    return row.status


def record_unbuilt(row: DeliveryState, error: Exception, config: Mapping[str, Any]) -> str:
    """Write that the message could not be built: a counted try, failed after the last."""
    row.smtp_code = None
    row.smtp_reply = f"the message could not be built: {type(error).__name__}: {error}"[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
    else:
        wait_for_retry(row, config)
    return row.status


def wait_for_retry(row: DeliveryState, config: Mapping[str, Any]) -> None:
    """Put ``row`` back to wait, due after the backoff for the tries it has used."""
    delay = backoff(row.attempts, int(config["RETRY_BACKOFF_SECONDS"]))
    row.status, row.next_attempt_at = row.retry_status, utcnow() + delay


def stale(
    db_session: Session, model: type[DeliveryState], lease: timedelta, *where: Any
) -> list[int]:
    """Rows of ``model`` to enqueue again, one task per row: claims past their lease
    (``requeue_dead``), and waiting rows that are overdue (nobody picked them up). ``where``
    narrows the rows looked at.

    Only for rows that each have a task of their own (the outbox). A campaign's rows have
    none: its batches claim whatever is due, so an overdue row only means the backlog is long,
    and sweeping them would rewrite the whole remaining audience every grace period.
    """
    table: Any = model
    now = utcnow()
    dead = requeue_dead(db_session, model, lease, *where)
    waiting = table.status.in_({"queued", model.retry_status})
    overdue = table.next_attempt_at < now - QUEUED_GRACE
    requeued = set(dead)
    forgotten = [
        row_id
        for row_id in db_session.scalars(select(table.id).where(waiting, overdue, *where))
        if row_id not in requeued
    ]
    if forgotten:
        # Made due now, so a row whose task is only waiting in a long queue is enqueued again
        # once per grace period, not once a minute: a backlog is not multiplied by the beat.
        db_session.execute(
            update(table)
            .where(table.id.in_(forgotten), waiting)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    return dead + forgotten


def requeue_dead(
    db_session: Session, model: type[DeliveryState], lease: timedelta, *where: Any
) -> list[int]:
    """Claims past their lease, presumed dead, go back to the queue; their ids.

    A dead claim that has used up its tries is failed instead: the process holding it died
    each time, and sending it again would only repeat that. A dead claim's outcome is
    unknown, so it is sent again, at most once more per lease, with the same Message-ID.
    """
    table: Any = model
    expired = (table.status == "sending", table.claimed_at < utcnow() - lease, *where)
    db_session.execute(
        update(table)
        .where(*expired, table.attempts >= MAX_ATTEMPTS)
        .values(
            status="failed", smtp_code=None, smtp_reply="no outcome recorded after the last try"
        )
        .execution_options(synchronize_session=False)
    )
    dead = list(db_session.scalars(select(table.id).where(*expired)))
    if dead:
        db_session.execute(
            update(table)
            .where(table.id.in_(dead), table.status == "sending")
            .values(status="queued")
            .execution_options(synchronize_session=False)
        )
    return dead
