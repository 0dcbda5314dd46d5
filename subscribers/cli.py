"""``flask --app web subscribers import|export``: the CSV import and export, for operators.

The same checks as the editor's import page: every line is checked and refused lines are
listed with their line numbers; valid lines are imported in one transaction; unsubscribed,
bounced and suppressed addresses are never re-added; the consent source is required.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from core import db
from subscribers import bulk
from subscribers import csvfile
from subscribers import imports
from subscribers import service
from subscribers import topics
from subscribers.admin import csv_error_text
from subscribers.admin import export_row
from subscribers.admin import row_error_text
from subscribers.models import Subscriber

subscribers_cli = AppGroup("subscribers", help="Import and export subscribers as CSV.")


@subscribers_cli.command(
    "import", help="Import a CSV file (email,name,organisation,topics,format,language,member)."
)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--consent", required=True, help="Where these people gave their consent (recorded with each)."
)
@click.option(
    "--dry-run", is_flag=True, help="Check every line and say what would happen; store nothing."
)
def import_csv(path: Path, consent: str, dry_run: bool) -> None:
    text = _read(path)
    db_session = db.session()
    preview = imports.preview(db_session, text, topics.topic_keys())
    for error in preview.errors:
        click.echo(f"line {error.line}: {row_error_text(error)}", err=True)
    if preview.error_count > len(preview.errors):
        click.echo(
            f"… and {preview.error_count - len(preview.errors)} more refused lines", err=True
        )
    tally = preview.tally
    click.echo(
        f"{preview.valid} valid lines, {preview.error_count} refused: {tally.new} new, "
        f"{tally.existing} already on the list, {tally.blocked} blocked (never re-added)."
    )
    if dry_run or not preview.valid:
        click.echo("Nothing was stored." if dry_run else "No valid line to import.")
        return
    rows = [
        item
        for _, item in csvfile.parse(text, topics.topic_keys())
        if isinstance(item, csvfile.ImportRow)
    ]
    evidence = service.Consent(
        source="import",
        actor="command line",
        note=consent,
        form_version=f"csv-import-cli:{path.name}",
    )
    with db.transaction() as session:
        done = bulk.import_rows(session, rows, evidence, current_app.config["DEFAULT_LOCALE"])
    click.echo(
        f"Imported {done.new} new subscribers; {done.existing} were already on the list, {done.blocked} blocked."
    )


def _read(path: Path) -> str:
    """The file's text, or exit 2 with one sentence saying why it cannot be used."""
    limit = int(current_app.config["IMPORT_MAX_BYTES"])
    try:
        data = path.read_bytes()
    except OSError as error:
        raise click.UsageError(f"Cannot read {path}: {error.strerror}.") from None
    if len(data) > limit:
        raise click.UsageError(f"{path} is larger than {limit // 1_000_000} MB.")
    try:
        text = csvfile.decode(data)
        csvfile.header(text)
        csvfile.count_rows(text)
    except csvfile.CsvError as error:
        raise click.UsageError(csv_error_text(error)) from None
    return text


@subscribers_cli.command(
    "export", help="Write every subscriber (not erased) as CSV to standard output."
)
def export_csv() -> None:
    query = select(Subscriber).where(Subscriber.erased_at.is_(None)).order_by(Subscriber.id)
    rows = db.session().scalars(query.execution_options(yield_per=2000))
    for line in csvfile.export_lines(export_row(row) for row in rows):
        sys.stdout.write(line)
