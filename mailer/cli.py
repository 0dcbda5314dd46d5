"""``flask --app web send-test ADDRESS``: a test email through the outbox and a worker."""

from __future__ import annotations

import time

import click
from email_validator import EmailNotValidError
from email_validator import validate_email
from flask.cli import with_appcontext

from core import db
from core.cli import fail
from mailer import outbox
from mailer.models import OutboxMessage
from mailer.tasks import enqueue_delivery


@click.command("send-test", help="Send a small bilingual test email through a worker.")
@with_appcontext
@click.argument("address")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option(
    "--wait", type=click.IntRange(0, 600), default=0, help="Seconds to wait for the outcome."
)
def send_test(address: str, lang: str, wait: int) -> None:
    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        fail(f"{address!r} is not a usable email address: {error}")
    with db.transaction() as db_session:
        message = outbox.queue(
            db_session, "test", address, lang, enqueue_delivery, requested_by="cli"
        )
    click.echo(f"Queued test email #{message.id} to {address}.")
    if wait:
        _wait_for(message.id, wait)


def _wait_for(message_id: int, seconds: int) -> None:
    """Poll the outbox row until the worker has recorded an outcome."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db_session = db.session()
        message = db_session.get(OutboxMessage, message_id, populate_existing=True)
        db_session.rollback()
        if message is not None and message.status in ("sent", "failed"):
            click.echo(f"{message.status}: {message.smtp_code} {message.smtp_reply}")
            if message.status == "failed":
                raise click.exceptions.Exit(1)
            return
        time.sleep(0.2)
    click.echo(f"No outcome after {seconds} s: is a worker running?", err=True)
    raise click.exceptions.Exit(1)
