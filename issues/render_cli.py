"""``flask --app web issue render SOURCE``: one segment of an issue, written out for a look.

SOURCE is the number of an issue in the database, or the path of an issue file, which is
parsed in memory and never stored. The command writes ``message.eml`` (headers and both
parts, DKIM-signed when configured), ``body.html`` and ``body.txt``, personalised for a
sample recipient, and prints their sizes. Wrong arguments exit with status 2 and one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext

from core import db
from issues import store as issues
from issues.archive import load_by_number
from issues.cli import issue_cli
from issues.importer import NotAnIssue
from mailer.dkim import DkimError
from mailer.message import HeaderInjection
from mailer.message import issue_message
from mailer.render import BudgetExceeded
from mailer.render import RenderedSegment
from mailer.render import render_segment
from mailer.segments import IssueContent
from mailer.segments import SegmentError
from mailer.segments import make_segment
from mailer.segments import sample_recipient


def init_app(app: Flask) -> None:
    issue_cli.add_command(render_command)


def refuse(message: str) -> NoReturn:
    """Stop with one sentence on stderr and exit status 2."""
    click.echo(message, err=True)
    raise SystemExit(2)


@click.command(
    "render", help="Render one segment of an issue into message.eml, body.html, body.txt."
)
@click.argument("source")
@click.option("--topics", help="Comma-separated topics, such as policy,data (default: all).")
@click.option("--format", "edition", default="full", show_default=True, help="full or digest.")
@click.option("--lang", help="zh or en (default: the configured default language).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write to.")
@with_appcontext
def render_command(
    source: str, topics: str | None, edition: str, lang: str | None, out: Path
) -> None:
    config = current_app.config
    known = list(config["TOPICS"])
    try:
        segment = make_segment(
            topics.split(",") if topics is not None else known,
            edition,
            lang or config["DEFAULT_LOCALE"],
            known,
        )
    except SegmentError as error:
        refuse(str(error))
    issue = _source(source)
    try:
        rendered = render_segment(issue, segment, config)
        recipient = sample_recipient(config, segment.locale)
        message = issue_message(rendered, recipient, config)
    except (BudgetExceeded, DkimError, HeaderInjection, ValueError) as error:
        refuse(str(error))
    personal = rendered.personalise(recipient)
    files = {
        "message.eml": bytes(message),
        "body.html": personal.html.encode("utf-8"),
        "body.txt": personal.text.encode("utf-8"),
    }
    _write(out, files)
    click.echo(_report(rendered, files, int(config["HTML_BUDGET_BYTES"]), out))


def _source(source: str) -> IssueContent:
    """The issue SOURCE names: a file parsed in memory, or an issue number in the database."""
    path = Path(source)
    if path.is_file():
        try:
            return issues.parse(path.read_bytes(), path.name, current_app.config)
        except OSError as error:
            refuse(f"Cannot read {path}: {error.strerror or error}.")
        except NotAnIssue as error:
            refuse(f"{path} is not an issue file: {error}")
    if source.isdigit():
        issue = load_by_number(db.session(), int(source))
        if issue is None:
            refuse(f"There is no issue {source} in the database; import it or give a file path.")
        return issue
    refuse(f"{source} is neither an issue number in the database nor an issue file.")


def _write(out: Path, files: dict[str, bytes]) -> None:
    """Write every file whole: each goes to a temporary name first, then is renamed."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            partial = out / f".{name}.part"
            partial.write_bytes(content)
            partial.replace(out / name)
    except OSError as error:
        refuse(f"Cannot write to {out}: {error.strerror or error}.")


def _report(rendered: RenderedSegment, files: dict[str, bytes], budget: int, out: Path) -> str:
    recipient = sample_recipient(current_app.config, rendered.segment.locale)
    lines = [
        f"Issue {rendered.issue_number}, segment {rendered.segment.key}, "
        f"{len(rendered.articles)} articles, written to {out}.",
        f"Personalised for a sample recipient, {recipient.name} <{recipient.email}>; "
        "its unsubscribe and preferences links carry no valid token.",
    ]
    for name, content in files.items():
        lines.append(f"  {name:<12} {len(content):>9,} bytes")
    lines.append(f"HTML budget: {rendered.html_bytes:,} of {budget:,} bytes at most per recipient.")
    if rendered.shortened:
        lines.append("Shortened to excerpts to fit the budget:")
        lines.extend(f"  #{item.number} {item.title}" for item in rendered.shortened)
    else:
        lines.append("No article had to be shortened.")
    return "\n".join(lines)
