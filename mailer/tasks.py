"""Celery tasks of the mailer: thin adapters that take IDs and call mailer.outbox."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app
from kombu.exceptions import OperationalError

from core import db
from mailer import delivery
from mailer import outbox

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=delivery.MAX_ATTEMPTS, name="mailer.tasks.deliver")
def deliver(self, message_id: int) -> str:  # type: ignore[no-untyped-def]
    """Send one outbox message; a temporary failure is retried with backoff."""
    db_session = db.session()
    message = outbox.claim(db_session, message_id)
    if message is None:
        return "skipped"
    outcome = outbox.deliver(db_session, message, current_app.config)
    if outcome.status == "queued":
        delay = delivery.backoff(message.attempts, current_app.config["RETRY_BACKOFF_SECONDS"])
        raise self.retry(countdown=delay.total_seconds())
    return outcome.status


@shared_task(name="mailer.tasks.requeue_stale")
def requeue_stale() -> int:
    """Beat: enqueue again what a dead worker or an unreachable broker left behind."""
    message_ids = outbox.stale(db.session(), delivery.claim_lease(current_app.config))
    for message_id in message_ids:
        deliver.delay(message_id)
    return len(message_ids)


def enqueue_delivery(message_id: int) -> None:
    """The ``enqueue`` callback that ``outbox.queue`` runs after the commit.

    When the broker cannot be reached the row is already committed as queued, and the beat
    task enqueues it once Redis is back: the request that queued it must not fail for that.
    """
    try:
        deliver.delay(message_id)
    except OperationalError as error:
        log.warning("outbox message %s not enqueued (%s); the beat task will", message_id, error)
