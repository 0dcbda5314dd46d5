"""Command-line tools: ``flask --app web editors …``, ``db upgrade``, ``send-test``.

Each command checks its arguments and exits with status 2 and one plain sentence when they
are wrong; nothing is written unless the whole command succeeds.
"""

from __future__ import annotations

import time

import click
from email_validator import EmailNotValidError
from email_validator import validate_email
from flask import Flask
from flask import current_app
from flask.cli import AppGroup
from flask.cli import with_appcontext

from core import auth
from core import db
from core import migrate
from mailer import outbox
from mailer.models import OutboxMessage
from mailer.tasks import enqueue_delivery


def init_app(app: Flask) -> None:
    app.cli.add_command(editors)
    app.cli.add_command(database)
    app.cli.add_command(send_test)


def fail(message: str) -> None:
    """Stop the command with one sentence and exit status 2."""
    raise click.UsageError(message)


editors = AppGroup("editors", help="Manage editor accounts.")


@editors.command("create", help="Create an editor account; the password is asked twice.")
@click.argument("email")
@click.option("--role", type=click.Choice(auth.ROLES), default="editor", show_default=True)
@click.password_option(help="Asked for when not given (the safe way).", prompt="Password")
def create_editor(email: str, role: str, password: str) -> None:
    try:
        with db.transaction() as db_session:
            editor = auth.create_editor(db_session, email, password, role)
    except auth.AccountError as error:
        fail(str(error))
    click.echo(f"Created {editor.role} {editor.email}.")


@editors.command("set-password", help="Set a new password; every open session of that editor ends.")
@click.argument("email")
@click.password_option(prompt="New password")
def set_password(email: str, password: str) -> None:
    try:
        auth.check_new_password(password)
    except auth.AccountError as error:
        fail(str(error))
    with db.transaction() as db_session:
        editor = auth.find_editor(db_session, email)
        if editor is None:
            fail(f"There is no editor account for {email}.")
        assert editor is not None
        editor.password_hash = auth.hash_password(password)
    click.echo(f"Password changed for {email}.")


@editors.command("list", help="List editor accounts.")
def list_editors() -> None:
    from sqlalchemy import select

    for editor in db.session().scalars(select(auth.Editor).order_by(auth.Editor.email)):
        state = "active" if editor.active else "disabled"
        click.echo(f"{editor.email}\t{editor.role}\t{state}")


database = AppGroup("db", help="Database schema.")


@database.command("upgrade", help="Create or migrate the schema to the newest version.")
def upgrade() -> None:
    migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo("The database schema is up to date.")


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
