"""How fast 100,000 subscriber CSV rows import: parse and check, then insert in batches.

Prints rows per second on SQLite (a fresh file) and on PostgreSQL when reachable
(NEWSLETTER_TEST_POSTGRES_URL, as the tests use), with a baseline measured in the same run:
inserting the same rows one ORM object at a time, each flushed (the per-row round trips the
import avoids), on the first 5,000 rows.

Run: .venv/bin/python bench/bench_csv_import.py [rows]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core import create_app
from core import db
from core import migrate
from subscribers import bulk
from subscribers import csvfile
from subscribers import imports
from subscribers.csvfile import ImportRow
from subscribers.models import ImportJob
from subscribers.models import Subscriber

TOPICS = ["policy", "companies", "data"]
POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BASELINE_ROWS = 5_000


def make_csv(rows: int) -> str:
    lines = ["email,name,organisation,topics,format,language,member"]
    for n in range(rows):
        member = "yes" if n % 10 == 0 else "no"
        lines.append(f"reader{n}@example{n % 97}.com,读者{n},公司{n % 50},policy;data,,zh,{member}")
    return "\n".join(lines) + "\n"


def databases() -> Iterator[tuple[str, str]]:
    """(name, URL) pairs: a temporary SQLite file, and a scratch PostgreSQL database if reachable."""
    with tempfile.TemporaryDirectory() as folder:
        yield "sqlite", f"sqlite:///{folder}/bench.db"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError:
        print("postgresql: not reachable, skipped")
        return
    name = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield "postgresql", POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def per_row_baseline(content: str) -> float:
    """Seconds per row when each subscriber is added and flushed on its own."""
    session = db.session()
    rows = [r for _, r in csvfile.parse(content, TOPICS) if isinstance(r, ImportRow)]
    rows = rows[:BASELINE_ROWS]
    started = time.perf_counter()
    for row in rows:
        values = bulk._subscriber_values(row, bulk.utcnow(), "zh")
        values["email_hash"] = "baseline-" + row.email_hash[:50]
        session.add(Subscriber(**values))
        session.flush()
    session.commit()
    return (time.perf_counter() - started) / len(rows)


def measure(backend: str, url: str, rows: int) -> None:
    migrate.upgrade(url)
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "REDIS_URL": "memory://"})
    content = make_csv(rows)
    with app.app_context():
        session = db.session()
        started = time.perf_counter()
        preview = imports.preview(session, content, TOPICS)
        preview_seconds = time.perf_counter() - started
        job = ImportJob(
            created_by="bench", filename="bench.csv", content=content, consent_source="bench"
        )
        job.status, job.total_rows = "queued", rows
        session.add(job)
        session.commit()
        started = time.perf_counter()
        done = imports.run(session, job.id, TOPICS, app.config["IMPORT_BATCH_SIZE"], "zh")
        run_seconds = time.perf_counter() - started
        assert done is not None and done.imported == rows == preview.tally.new
        baseline = per_row_baseline(content)
    app.extensions["db"].kw["bind"].dispose()
    print(
        f"{backend}: {rows} rows — preview {preview_seconds:.2f} s, "
        f"import {run_seconds:.2f} s = {rows / run_seconds:,.0f} rows/s; "
        f"per-row ORM baseline {1 / baseline:,.0f} rows/s "
        f"(bulk is {baseline * rows / run_seconds:.1f}× faster)"
    )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for backend, url in databases():
        measure(backend, url, rows)


if __name__ == "__main__":
    main()
