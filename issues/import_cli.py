"""``flask --app web issue import PATH`` and ``issue list``: a thin shell over mailer.issues.

A refused file or a refused import prints one sentence on stderr and exits with status 2;
nothing is stored unless the whole import succeeds. With ``--json`` stdout carries exactly
one JSON object (the parse, as ``mailer.importer.to_json`` shapes it), so scripts can read it.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext

from core import db
from issues import store as issues
from issues.cli import issue_cli
from issues.importer import NotAnIssue
from issues.importer import ParsedIssue
from issues.importer import to_json
from mailer.blocks import block_counts

# What each outcome of storing means, in one sentence for the person at the terminal.
OUTCOMES = {
    "created": "Stored issue {number} as a new draft ({sections} sections, {articles} articles).",
    "replaced": "Replaced draft issue {number} with this file ({sections} sections, {articles} articles).",
    "unchanged": "Issue {number} was already imported from this same file; nothing changed.",
}


def init_app(app: Flask) -> None:
    issue_cli.add_command(import_issue)
    issue_cli.add_command(list_issues)


def refuse(message: str) -> NoReturn:
    """Stop with one sentence on stderr and exit status 2."""
    click.echo(message, err=True)
    raise SystemExit(2)


@click.command("import", help="Import an issue file (the magazine's text export or Markdown).")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be imported; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@with_appcontext
def import_issue(path: Path, dry_run: bool, as_json: bool) -> None:
    parsed = _parse(path)
    outcome = None
    if not dry_run:
        try:
            with db.transaction() as db_session:
                result = issues.store_issue(db_session, parsed)
        except issues.IssueError as error:
            refuse(str(error))
        outcome = OUTCOMES[result.action].format(
            number=result.issue.number, sections=result.sections, articles=result.articles
        )
    if as_json:
        click.echo(json.dumps(to_json(parsed), ensure_ascii=False, indent=2))
        if outcome:
            click.echo(outcome, err=True)
        return
    click.echo(describe(parsed))
    click.echo(outcome or "Dry run: nothing was stored.")


def _parse(path: Path) -> ParsedIssue:
    """The parsed file, or a refusal naming what is wrong with it."""
    data = _read(path)
    try:
        return issues.parse(data, path.name, current_app.config)
    except NotAnIssue as error:
        refuse(f"{path} was not imported: {error}")


def _read(path: Path) -> bytes:
    """The file's bytes, or a refusal: a folder, a pipe or a device is not an issue file
    (reading a pipe waits for a writer forever, /dev/zero never ends), nor is a file far
    larger than one issue."""
    if path.exists() and not path.is_file():
        refuse(
            f"Cannot read {path}: it is {'a folder' if path.is_dir() else 'not a regular file'}."
        )
    try:
        with path.open("rb") as file:
            data = file.read(issues.ISSUE_FILE_MAX + 1)
    except OSError as error:
        refuse(f"Cannot read {path}: {error.strerror or error}.")
    if len(data) > issues.ISSUE_FILE_MAX:
        limit = issues.ISSUE_FILE_MAX // (1024 * 1024)
        refuse(f"{path} was not imported: it is larger than {limit} MB, far more than one issue.")
    return data


def describe(parsed: ParsedIssue) -> str:
    """A readable table of the parse: one line per article under its section, then warnings."""
    lines = [
        f"Issue {parsed.number if parsed.number is not None else '?'} · {parsed.title}"
        f" · {parsed.period or 'no period'} ({parsed.format})",
    ]
    number = 0
    for section in parsed.sections:
        lines.append("")
        lines.append(f"{section.name}  [{', '.join(section.topics) or 'everyone'}]")
        lines.append(
            "  "
            + "  ".join(
                (
                    pad("#", 3),
                    pad("title", 40),
                    pad("topics", 20),
                    pad("source", 20),
                    pad("chars", 6),
                    "tables",
                )
            )
        )
        for article in section.articles:
            number += 1
            cells = (
                pad(str(number), 3),
                pad(article.title, 40),
                pad(", ".join(article.topics) or "everyone", 20),
                pad(article.source or "-", 20),
                pad(str(article.chars), 6),
                str(block_counts(article.blocks)["table"]),
            )
            lines.append("  " + "  ".join(cells))
    lines.append("")
    lines.append(f"{len(parsed.sections)} sections, {len(parsed.articles)} articles.")
    if parsed.warnings:
        lines.append(f"{len(parsed.warnings)} warnings:")
        lines.extend(f"  - {warning}" for warning in parsed.warnings)
    return "\n".join(lines)


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, columns: int) -> str:
    """``text`` cut with … or padded with spaces to exactly ``columns`` terminal columns."""
    text = " ".join(text.split())
    if width(text) > columns:
        while width(text) > columns - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (columns - width(text))


@click.command("list", help="List imported issues, newest first.")
@with_appcontext
def list_issues() -> None:
    rows = issues.list_issues(db.session())
    if not rows:
        click.echo("No issues have been imported yet.")
        return
    for row in rows:
        click.echo(
            "\t".join(
                (
                    str(row.number),
                    row.period or "-",
                    row.status,
                    f"{row.articles} articles",
                    f"{row.warnings} warnings",
                    row.title,
                )
            )
        )
