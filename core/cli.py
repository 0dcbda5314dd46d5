"""Command-line tools: ``flask --app web editors …`` and ``db upgrade``.

Each command checks its arguments and exits with status 2 and one plain sentence when they
are wrong; nothing is written unless the whole command succeeds.
"""

from __future__ import annotations

import click
from flask import Flask
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from core import auth
from core import db
from core import migrate
from core import sessions
from core import totp


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
        editor = _editor(db_session, email)
        auth.set_password(db_session, editor, password)
    click.echo(f"Password changed for {email}; every session of that editor has ended.")


@editors.command(
    "reset-two-factor",
    help="Turn an editor's two-factor login off (a lost phone and codes); their sessions end.",
)
@click.argument("email")
def reset_two_factor(email: str) -> None:
    with db.transaction() as db_session:
        editor = _editor(db_session, email)
        totp.disable(db_session, editor)
        sessions.end_all(db_session, editor.id)
    click.echo(f"Two-factor login is off for {email}; they set it up again if it is required.")


@editors.command("end-sessions", help="Log an editor out everywhere.")
@click.argument("email")
def end_sessions(email: str) -> None:
    with db.transaction() as db_session:
        count = sessions.end_all(db_session, _editor(db_session, email).id)
    click.echo(f"Ended {count} sessions of {email}.")


def _editor(db_session: Session, email: str) -> auth.Editor:
    editor = auth.find_editor(db_session, email)
    if editor is None:
        fail(f"There is no editor account for {email}.")
    assert editor is not None
    return editor


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
