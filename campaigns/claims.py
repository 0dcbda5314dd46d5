"""Claims on ledger rows: taken atomically by a batch, and kept alive while it works.

A claim is a row in ``sending`` with a ``claimed_at``. The beat hands a claim older than
the lease (SEND_CLAIM_LEASE_SECONDS) to another batch, presuming its worker dead. A live
batch must therefore never let its claims age past the lease, whatever it is doing: an
SMTP reply that takes SMTP_TIMEOUT, a throttle that makes it wait. ``ClaimKeeper`` renews
them from a thread of its own, on a connection of its own, every quarter of the lease.

Lock order, so that PostgreSQL never finds two of these waiting on each other: a claim
locks the campaign row (its heartbeat) before any ledger row, as a cancel does; the keeper
waits for no ledger row at all, and holds none while it beats. It renews only the rows
nobody else holds: one the batch is recording at that moment is being settled, and if that
transaction fails, the next round renews it. (Renewing in the order of the heap while the
batch recorded in the order of ids deadlocked them, and PostgreSQL aborted the batch's
record of ten sent messages.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import Delivery
from core.db import utcnow

WAITING = ("queued", "retry")


def claim(db_session: Session, campaign_id: int, limit: int) -> list[int]:
    """Take up to ``limit`` due rows of the campaign for this batch, atomically, and commit.

    Due retries come first, then queued rows, each in the order of the (campaign, status,
    due time) index: sorting every waiting row by id for each batch made claiming quadratic
    in the audience, and without the two steps a retry due now would wait behind the whole
    queued backlog. On PostgreSQL rows locked by another batch are skipped (``FOR UPDATE
    SKIP LOCKED``); on SQLite the write lock serialises claims and the status condition
    does the rest.
    """
    now = utcnow()
    ids: list[int] = []
    beat(db_session, campaign_id)
    for status in ("retry", "queued"):
        if len(ids) < limit:
            ids += _claim_status(db_session, campaign_id, status, limit - len(ids), now)
    db_session.commit()
    return sorted(ids)


def _claim_status(
    db_session: Session, campaign_id: int, status: str, limit: int, now: datetime
) -> list[int]:
    due = (
        select(Delivery.id)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.status == status,
            Delivery.next_attempt_at <= now,
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    if db_session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = db_session.execute(
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()), Delivery.status == status)
        .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.scalars())


def beat(db_session: Session, campaign_id: int) -> None:
    """Note that a batch of the campaign is alive (the beat restarts campaigns gone quiet)."""
    db_session.execute(
        update(Campaign).where(Campaign.id == campaign_id).values(heartbeat_at=utcnow())
    )


class ClaimKeeper:
    """Renews a batch's claims (those still ``sending``) until stopped."""

    def __init__(
        self, engine: Engine, campaign_id: int, ids: Sequence[int], lease: timedelta
    ) -> None:
        self.engine = engine
        self.campaign_id = campaign_id
        self.ids = list(ids)
        self.interval = max(lease.total_seconds() / 4, 0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="claim-keeper", daemon=True)

    def __enter__(self) -> ClaimKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.renew()
            except SQLAlchemyError:
                # The next round tries again; a claim that really ages is resent once, with
                # the same Message-ID, which is the bound the batch promises anyway.
                continue

    def renew(self) -> None:
        """Renew the claims still ``sending`` that no other transaction holds (see above),
        then beat, in a transaction of its own: holding the renewed rows while waiting for the
        campaign row would deadlock with a batch that holds that row and records them."""
        held = select(Delivery.id).where(Delivery.id.in_(self.ids), Delivery.status == "sending")
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # FOR NO KEY UPDATE, the lock the UPDATE takes anyway: an inbound report
                # naming the row (a FOR KEY SHARE) neither blocks nor is blocked by it.
                held = held.with_for_update(skip_locked=True, key_share=True)
            connection.execute(
                update(Delivery)
                .where(Delivery.id.in_(held.scalar_subquery()), Delivery.status == "sending")
                .values(claimed_at=utcnow())
            )
        with self.engine.begin() as connection:
            connection.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id)
                .values(heartbeat_at=utcnow())
            )
