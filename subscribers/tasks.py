"""Celery tasks of the audience: thin adapters that call subscribers.service.

A signup is handled here rather than in the request, so that the request does the same
work whatever state the address is in, and its response time tells nothing about it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import SQLAlchemyError

from core import db
from mailer.tasks import enqueue_delivery
from subscribers import emails  # noqa: F401 - registers the outbox builders in the worker
from subscribers import imports
from subscribers import service
from subscribers.models import ImportJob
from subscribers.topics import topic_keys


@shared_task(name="subscribers.tasks.signup")
def signup(address: str, choices: dict[str, Any], consent: dict[str, Any]) -> str:
    """Record a signup and queue the email its state calls for."""
    request = service.Choices(**{**choices, "topics": tuple(choices["topics"])})
    # Two signups for one new address can race; the loser finds the winner's row next time.
    for attempt in (1, 2):
        try:
            with db.transaction() as db_session:
                return service.subscribe(
                    db_session, address, request, service.Consent(**consent), enqueue_delivery
                )
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@shared_task(name="subscribers.tasks.send_link")
def send_link(address: str) -> str:
    """Mail an address its preferences link, if it has a subscription."""
    with db.transaction() as db_session:
        return service.send_link(db_session, address, enqueue_delivery)


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


def enqueue_signup(address: str, choices: service.Choices, consent: service.Consent) -> None:
    signup.delay(
        address,
        {
            "topics": list(choices.topics),
            "format": choices.format,
            "locale": choices.locale,
            "name": choices.name,
            "organisation": choices.organisation,
        },
        asdict(consent),
    )
