"""Celery tasks of the audience: thin adapters that call subscribers.service.

A signup is handled here rather than in the request, so that the request does the same
work whatever state the address is in (it stores a ``SignupRequest``), and its response time
tells nothing about it. The row is written before anything is enqueued, so a broker that is
down loses nothing: ``requeue_requests`` on the beat enqueues what is left waiting.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from celery import shared_task
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import db
from core.db import on_commit
from core.db import utcnow
from mailer.tasks import enqueue_delivery
from subscribers import emails  # noqa: F401 - registers the outbox builders in the worker
from subscribers import imports
from subscribers import service
from subscribers.models import ImportJob
from subscribers.models import SignupRequest
from subscribers.topics import topic_keys

log = logging.getLogger(__name__)


@shared_task(name="subscribers.tasks.handle_request")
def handle_request(request_id: int) -> str:
    """Do what a stored signup or link request calls for, and delete it, in one transaction.

    The row is deleted first: a second run of the same request (a redelivered task, the beat
    enqueueing a row whose task was only slow) finds nothing to delete and does nothing.
    """
    # Two signups for one new address can race; the loser finds the winner's row next time.
    for attempt in (1, 2):
        try:
            with db.transaction() as db_session:
                return _handle(db_session, request_id)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _handle(db_session: Session, request_id: int) -> str:
    stored = db_session.get(SignupRequest, request_id)
    if stored is None:
        return "skipped"
    deleted = db_session.execute(delete(SignupRequest).where(SignupRequest.id == request_id))
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        return "skipped"
    if stored.kind == "link":
        return service.send_link(db_session, stored.address, enqueue_delivery)
    choices = service.Choices(**{**stored.choices, "topics": tuple(stored.choices["topics"])})
    consent = service.Consent(**stored.consent)
    return service.subscribe(db_session, stored.address, choices, consent, enqueue_delivery)


@shared_task(name="subscribers.tasks.requeue_requests")
def requeue_requests() -> int:
    """Beat: enqueue again the requests still waiting after the grace (the broker was down)."""
    grace = request_grace(current_app.config)
    query = select(SignupRequest.id).where(SignupRequest.created_at < utcnow() - grace)
    db_session = db.session()
    request_ids = list(db_session.scalars(query.order_by(SignupRequest.id)))
    # Made due again from now, as the outbox does: a request whose task is only waiting in a
    # long queue is enqueued once more per grace period, not at every tick.
    db_session.execute(
        update(SignupRequest).where(SignupRequest.id.in_(request_ids)).values(created_at=utcnow())
    )
    db_session.commit()
    for request_id in request_ids:
        handle_request.delay(request_id)
    return len(request_ids)


def request_grace(config: Any) -> timedelta:
    """How long a stored request may wait for its task before the beat enqueues it again."""
    return timedelta(seconds=10 * int(config["SCHEDULER_SECONDS"]))


@shared_task(name="subscribers.tasks.import_csv")
def import_csv(job_id: int) -> str:
    """Run a previewed CSV import; a failure is written on the job for the editor to see."""
    db_session = db.session()
    config = current_app.config
    try:
        job = imports.run(
            db_session,
            job_id,
            topic_keys(),
            int(config["IMPORT_BATCH_SIZE"]),
            str(config["DEFAULT_LOCALE"]),
        )
    except SQLAlchemyError as error:
        db_session.rollback()
        failed = db_session.get(ImportJob, job_id)
        if failed is not None:
            failed.status, failed.error = "failed", str(error).splitlines()[0][:500]
            db_session.commit()
        raise
    return job.status if job is not None else "skipped"


def store_request(
    kind: str,
    address: str,
    consent: service.Consent,
    choices: service.Choices | None = None,
) -> None:
    """Write the request (the same row whatever the address's state), commit, then enqueue."""
    values = asdict(choices) if choices is not None else {}
    if choices is not None:
        values["topics"] = list(choices.topics)
    with db.transaction() as db_session:
        stored = SignupRequest(kind=kind, address=address, choices=values, consent=asdict(consent))
        db_session.add(stored)
        db_session.flush()
        request_id = stored.id
        on_commit(db_session, lambda: enqueue_request(request_id))


def enqueue_request(request_id: int) -> None:
    """Enqueue a stored request; with the broker down the row waits for the beat."""
    try:
        handle_request.delay(request_id)
    except OperationalError as error:
        log.warning("signup request %s not enqueued (%s); the beat task will", request_id, error)
