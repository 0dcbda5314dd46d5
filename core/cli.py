"""Command-line tools: ``flask --app web editors …`` and ``db upgrade``.

Each command checks its arguments and exits with status 2 and one plain sentence when they
are wrong; nothing is written unless the whole command succeeds.
"""

from __future__ import annotations

import click
from flask import Flask
from flask import current_app
from flask.cli import AppGroup

from core import auth
from core import db
from core import migrate


def init_app(app: Flask) -> None:
    app.cli.add_command(editors)
    app.cli.add_command(database)


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
