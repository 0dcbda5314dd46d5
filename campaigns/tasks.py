"""Celery tasks of campaigns: thin adapters that take IDs and call plan, send and control.

Tasks only ring the bell. Each batch claims its own rows from the ledger, so a task that is
lost (Redis flushed, broker down at enqueue), duplicated or redelivered changes nothing: the
beat's ``tick`` starts what is due and restarts what went quiet.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import redis
from celery import shared_task
from celery.utils.log import get_task_logger
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import select
from sqlalchemy import update

from campaigns import control
from campaigns import send
from campaigns.models import Campaign
from campaigns.models import Delivery
from campaigns.throttle import Throttle
from core import db
from core.db import utcnow
from core.i18n import N_
from mailer import delivery
from mailer.dkim import DkimError
from mailer.render import BudgetExceeded

# The worker's own log (celery configures it), where operators look for what a task did.
log = get_task_logger(__name__)


@cache
def _throttle(redis_url: str) -> Throttle:
    return Throttle(redis.Redis.from_url(redis_url), current_app.config)


@shared_task(name="campaigns.tasks.start")
def start(campaign_id: int) -> int | None:
    """Plan a due campaign and set its batches going; nothing if another start won."""
    db_session = db.session()
    log.info("campaign %s: planning", campaign_id)
    try:
        planned = control.start(db_session, campaign_id, None, current_app.config)
    except (control.CampaignError, BudgetExceeded, DkimError, ValueError) as error:
        # Nothing was planned (the transaction is undone); the send stops, saying why, so
        # that it is neither started again every tick nor left waiting without a word.
        db_session.rollback()
        msgid, params = _why(error)
        control.stop_unstartable(db_session, campaign_id, msgid, **params)
        db_session.commit()
        log.warning("campaign %s could not start: %s", campaign_id, error)
        return None
    db_session.commit()
    if planned is not None:
        log.info("campaign %s: %s readers planned", campaign_id, planned)
        enqueue_batches(campaign_id)
    return planned


def _why(error: Exception) -> tuple[str, dict[str, Any]]:
    if isinstance(error, control.CampaignError):
        return error.msgid, error.params
    return N_("The send could not be prepared: %(error)s"), {"error": str(error)[:300]}


@shared_task(name="campaigns.tasks.send_batch")
def send_batch(campaign_id: int) -> int:
    """Send one batch; while work remains, hand on to the next batch (after a pause when
    everything left is waiting for a retry)."""
    db_session = db.session()
    result = send.send_batch(
        db_session, campaign_id, current_app.config, _throttle(current_app.config["REDIS_URL"])
    )
    if result.more:
        _enqueue(campaign_id, countdown=result.wait)
    return result.sent


@shared_task(name="campaigns.tasks.tick")
def tick() -> int:
    """Beat: start due campaigns, expire late ones, and recover what a dead worker or a
    lost queue left behind. Returns how many campaigns it set going."""
    db_session = db.session()
    config = current_app.config
    now = utcnow()
    due = list(
        db_session.scalars(
            select(Campaign.id).where(Campaign.status == "scheduled", Campaign.send_at <= now)
        )
    )
    db_session.commit()
    for campaign_id in due:
        enqueue_start(campaign_id)
    lease = timedelta(seconds=int(config["SEND_CLAIM_LEASE_SECONDS"]))
    return len(due) + len(_recover(lease))


def _recover(lease: timedelta) -> list[int]:
    """Dead claims go back to the queue; running campaigns gone quiet get batches again."""
    db_session = db.session()
    live = select(Campaign.id).where(Campaign.status.in_(("running", "paused")))
    # Dead claims only: a queued row waits for a batch, not a task of its own, so one long
    # overdue means only a long backlog, which the batches are working through (a campaign
    # gone quiet is restarted below). Sweeping them, as the outbox does, loaded and rewrote
    # every row still queued each grace period: 10 MB in the worker at 100,000 readers.
    delivery.requeue_dead(db_session, Delivery, lease, Delivery.campaign_id.in_(live))
    # A cancelled campaign's dead claims and waiting rows are settled as cancelled: nobody
    # will send them, and a later send of the issue must be able to reach those readers.
    cancelled = select(Campaign.id).where(Campaign.status == "cancelled")
    db_session.execute(
        update(Delivery)
        .where(
            Delivery.campaign_id.in_(cancelled),
            (Delivery.status.in_(("queued", "retry")))
            | ((Delivery.status == "sending") & (Delivery.claimed_at < utcnow() - lease)),
        )
        .values(status="skipped", skip_reason="cancelled")
    )
    quiet = list(
        db_session.scalars(
            select(Campaign.id).where(
                Campaign.status == "running",
                # The claim keeper beats every quarter lease: a whole lease of silence means
                # no batch of this campaign is alive.
                Campaign.heartbeat_at < utcnow() - lease,
            )
        )
    )
    db_session.commit()
    for campaign_id in quiet:
        log.info("campaign %s: no batch ran lately; setting batches going again", campaign_id)
        enqueue_batches(campaign_id)
    return quiet


def enqueue_start(campaign_id: int) -> None:
    """The after-commit callback that starts a campaign now; the beat does it if Redis is down."""
    try:
        start.delay(campaign_id)
    except OperationalError as error:
        log.warning("campaign %s not started now (%s); the beat will start it", campaign_id, error)


def enqueue_batches(campaign_id: int) -> None:
    """Set SEND_PARALLEL_BATCHES batches of the campaign going (each hands on to the next)."""
    for _ in range(int(current_app.config["SEND_PARALLEL_BATCHES"])):
        if not _enqueue(campaign_id):
            return


def _enqueue(campaign_id: int, countdown: float = 0.0) -> bool:
    try:
        send_batch.apply_async((campaign_id,), countdown=countdown or None)
    except OperationalError as error:
        log.warning("campaign %s: batch not enqueued (%s); the beat will", campaign_id, error)
        return False
    return True
