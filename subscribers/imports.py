"""CSV imports: a preview that changes nothing, then a run in batches that each commit.

A run records how many data lines it has handled in the same transaction as each batch's
rows, so a task that is redelivered after a crash resumes where the last commit left off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy.orm import Session

from core.db import utcnow
from subscribers import bulk
from subscribers import csvfile
from subscribers import service
from subscribers.csvfile import ImportRow
from subscribers.csvfile import RowError
from subscribers.models import ImportJob

PREVIEW_ERRORS = 200
PREVIEW_SAMPLE = 10
# The finished page lists this many skipped lines with their reasons; the count is of all.
REPORT_LIMIT = 500


@dataclass
class Preview:
    """What an import would do, without doing it."""

    lines: int = 0
    valid: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    sample: list[ImportRow] = field(default_factory=list)
    tally: bulk.ImportTally = field(default_factory=bulk.ImportTally)


def preview(db_session: Session, text: str, topics: Sequence[str]) -> Preview:
    """Check every line and count what would be new, left alone or refused."""
    result, rows = Preview(), []
    for index, item in csvfile.parse(text, topics):
        result.lines = index + 1
        if isinstance(item, RowError):
            result.error_count += 1
            if len(result.errors) < PREVIEW_ERRORS:
                result.errors.append(item)
        else:
            rows.append(item)
    result.valid = len(rows)
    result.sample = rows[:PREVIEW_SAMPLE]
    result.tally = bulk.sort_import_rows(db_session, rows)[1]
    return result


def consent_for(job: ImportJob) -> service.Consent:
    """The consent record of every imported row: the editor's stated source and the file."""
    return service.Consent(
        source="import",
        actor=job.created_by,
        note=job.consent_source,
        form_version=f"csv-import-{job.id}",
    )


def run(
    db_session: Session, job_id: int, topics: Sequence[str], batch_size: int, locale: str
) -> ImportJob | None:
    """Import the job's valid rows in committed batches; None if it is not waiting to run."""
    job = db_session.get(ImportJob, job_id)
    if job is None or job.status not in ("queued", "running"):
        return None
    job.status = "running"
    db_session.commit()
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    last = job.processed_rows - 1
    for index, item in csvfile.parse(job.content, topics, skip=job.processed_rows):
        last = index
        if isinstance(item, RowError):
            errors.append(item)
        else:
            rows.append(item)
        if len(rows) + len(errors) >= batch_size:
            _commit_batch(db_session, job, rows, errors, last, locale)
            rows, errors = [], []
    _commit_batch(db_session, job, rows, errors, last, locale)
    job.status, job.finished_at, job.content = "done", utcnow(), ""
    db_session.commit()
    return job


def _commit_batch(
    db_session: Session,
    job: ImportJob,
    rows: list[ImportRow],
    errors: list[RowError],
    last: int,
    locale: str,
) -> None:
    """Insert a batch and note what it skipped, in the same transaction as its progress."""
    tally = bulk.import_rows(db_session, rows, consent_for(job), locale)
    job.imported += tally.new
    job.skipped += tally.existing + tally.blocked + len(errors)
    skipped: list[list[Any]] = [[error.line, error.code, error.value[:100]] for error in errors]
    skipped += [[line, "existing", ""] for line in tally.existing_lines]
    skipped += [[line, "blocked", ""] for line in tally.blocked_lines]
    report = list(job.skipped_report or [])
    if skipped and len(report) < REPORT_LIMIT:
        # A new list, so that the JSON column sees the change.
        job.skipped_report = sorted(report + skipped)[:REPORT_LIMIT]
    job.processed_rows = last + 1
    db_session.commit()
