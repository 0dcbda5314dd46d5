"""``flask --app web issue ready NUMBER`` and ``issue draft NUMBER``: publish an issue, or take it back.

Ready puts the issue in the public archive and releases it to be sent; draft takes it out of
the archive again, so that it can be edited or a revised file can replace it. At a terminal,
draft first asks for confirmation, saying so (``--yes`` answers for a script). An issue
whose send has started (``issues.store.is_sent``) stays as it was sent. A wrong argument
prints one sentence on stderr and exits with status 2, and nothing is changed.
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from core import db
from issues import store as issues
from issues.cli import issue_cli
from issues.import_cli import refuse
from issues.models import Issue

# What each status means for the person at the terminal, after the change.
DONE = {
    "ready": "Issue {number} is ready to send and public in the archive at {url}.",
    "draft": "Issue {number} is a draft again: out of the public archive, and replaceable by an import.",
}
ALREADY = {
    "ready": "Issue {number} was already ready to send; nothing changed.",
    "draft": "Issue {number} was already a draft; nothing changed.",
}


def init_app(app: Flask) -> None:
    issue_cli.add_command(ready)
    issue_cli.add_command(draft)


@click.command("ready", help="Mark an issue ready: public in the archive, and free to be sent.")
@click.argument("number")
@with_appcontext
def ready(number: str) -> None:
    click.echo(change_status(number, "ready"))


@click.command("draft", help="Set a ready issue back to draft: out of the archive, editable.")
@click.argument("number")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def draft(number: str, yes: bool) -> None:
    if not yes and sys.stdin.isatty() and _status(number) == "ready":
        confirm_draft(number)
    click.echo(change_status(number, "draft"))


def confirm_draft(number: str) -> None:
    """Ask before a ready issue leaves the public archive; stop with status 1 on no."""
    question = (
        f"Issue {number} comes off the website at once: its pages and the links to them show "
        '"not found" until it is marked ready again. Move it back to draft?'
    )
    if not click.confirm(question, default=False):
        click.echo("Nothing changed.", err=True)
        raise SystemExit(1)


def change_status(number: str, status: str) -> str:
    """Set issue ``number`` to ``status`` in one transaction; the sentence saying what was done."""
    with db.transaction() as db_session:
        issue = db_session.scalars(
            select(Issue).where(Issue.number == issue_number(number))
        ).one_or_none()
        if issue is None:
            refuse(f"There is no issue {number}; `flask issue list` shows the imported issues.")
        if issue.status == status:
            return ALREADY[status].format(number=issue.number)
        try:
            issues.set_status(db_session, issue.id, status)
        except issues.IssueError as error:
            refuse(str(error))
    url = f"{current_app.config['BASE_URL'].rstrip('/')}/issues/{issue.number}"
    return DONE[status].format(number=issue.number, url=url)


def _status(number: str) -> str | None:
    """The status of issue ``number``, or None when there is none."""
    return db.session().scalar(select(Issue.status).where(Issue.number == issue_number(number)))


def issue_number(text: str) -> int:
    """The issue number ``text`` names, or a refusal: numbers are positive whole numbers."""
    number = text.strip()
    if not (number.isascii() and number.isdigit()) or not 0 < int(number) <= issues.ID_MAX:
        refuse(
            f"{text!r} is not an issue number; give the number `flask issue list` shows, such as 400."
        )
    return int(number)
