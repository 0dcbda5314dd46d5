"""How long planning a campaign takes (issue 10: freezing 100,000 deliveries in ≤ 2 s).

It makes a fresh database (a PostgreSQL database of its own, dropped afterwards, or a SQLite
file) with N active readers spread over every edition, the seed issue made ready, and one
campaign, then runs ``campaigns.plan.plan`` once and times each of its statements by kind:
the audience queries (``editions``), the rendering of the editions (freeze), the
``INSERT … SELECT``, the ``ANALYZE`` and the final count. The readers and the issue come from
``bench_send``, so both benchmarks plan the same audience.

Run: .venv/bin/python bench/bench_plan.py [--n 100000] [--db postgresql|sqlite]. The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.bench_send import TOPICS
from bench.bench_send import add_readers
from bench.bench_send import fresh_database
from bench.bench_send import ready_seed
from campaigns.models import Campaign
from campaigns.models import Delivery
from campaigns.plan import plan
from core import create_app

# What each kind of statement looks like, first match wins; anything else is "other".
KINDS = (
    ("analyze", "ANALYZE"),
    ("insert", "INSERT INTO delivery"),
    ("count", "count(delivery.id)"),
    ("editions", "GROUP BY subscriber.topics"),
)


class StatementClock:
    """Seconds spent in the database per kind of statement, from the engine's own events."""

    def __init__(self, explain: bool) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.explain = explain
        self._started = 0.0

    def before(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.explain and any(mark in statement for _, mark in KINDS[1:]):
            self.print_plan(cursor, statement, parameters)
        self._started = time.perf_counter()

    @staticmethod
    def print_plan(cursor: Any, statement: str, parameters: Any) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of the statement about to run, in a savepoint rolled
        back at once, so the statement itself then runs as if nothing had happened."""
        cursor.execute("SAVEPOINT bench_explain")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        print("\n".join(row[0] for row in cursor.fetchall()), flush=True)
        cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")

    def after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        kind = next((name for name, mark in KINDS if mark in statement), "other")
        self.seconds[kind] += time.perf_counter() - self._started
        self.calls[kind] += 1


def settings_for(url: str) -> dict[str, Any]:
    return {
        "SECRET_KEY": "bench-" + secrets.token_hex(16),
        "DATABASE_URL": url,
        "BASE_URL": "http://newsletter.test",
        "MAIL_FROM": "newsletter@newsletter.test",
        "MESSAGE_ID_DOMAIN": "newsletter.test",
        "TOPICS": TOPICS,
    }


def measure(count: int, kind: str, folder: Path, explain: bool) -> dict[str, Any]:
    with fresh_database(kind, folder) as url:
        app = create_app(settings_for(url))
        engine = app.extensions["db"].kw["bind"]
        try:
            with app.app_context():
                return plan_once(app, app.extensions["db"](), engine, count, explain)
        finally:
            engine.dispose()


def plan_once(
    app: Flask, db_session: Session, engine: Any, count: int, explain: bool
) -> dict[str, Any]:
    inserted = add_readers(db_session, count)
    print(f"  {count} readers inserted in {inserted:.1f} s", flush=True)
    issue_id = ready_seed(app, db_session)
    campaign = Campaign(issue_id=issue_id, created_by="bench@newsletter.test", status="running")
    db_session.add(campaign)
    db_session.commit()
    clock = StatementClock(explain)
    event.listen(engine, "before_cursor_execute", clock.before)
    event.listen(engine, "after_cursor_execute", clock.after)
    started = time.perf_counter()
    planned = plan(db_session, campaign, app.config)
    db_session.commit()
    total = time.perf_counter() - started
    event.remove(engine, "before_cursor_execute", clock.before)
    event.remove(engine, "after_cursor_execute", clock.after)
    stored = db_session.scalar(select(func.count()).select_from(Delivery))
    if planned != count or stored != count:
        raise SystemExit(f"planned {planned}, stored {stored}, expected {count}")
    return {
        "total": total,
        "freeze": campaign.freeze_seconds or 0.0,
        "plan_seconds": campaign.plan_seconds or 0.0,
        "seconds": dict(clock.seconds),
        "calls": dict(clock.calls),
    }


def report(count: int, kind: str, result: dict[str, Any]) -> dict[str, Any]:
    seconds, calls = result["seconds"], result["calls"]
    # The freeze step's own statements (storing each rendered edition) are "other";
    # what remains of its time is rendering in Python.
    rows = [
        ("editions", seconds.get("editions", 0.0), calls.get("editions", 0)),
        ("freeze/render", result["freeze"], None),
        ("insert", seconds.get("insert", 0.0), calls.get("insert", 0)),
        ("analyze", seconds.get("analyze", 0.0), calls.get("analyze", 0)),
        ("count", seconds.get("count", 0.0), calls.get("count", 0)),
        ("other SQL", seconds.get("other", 0.0), calls.get("other", 0)),
        ("plan_seconds (stored)", result["plan_seconds"], None),
        ("total", result["total"], None),
    ]
    print(f"{'step':<24}{'seconds':>9}{'statements':>12}")
    for name, value, number in rows:
        print(f"{name:<24}{value:>9.3f}{'' if number is None else number:>12}")
    return {
        "readers": count,
        "db": kind,
        "total_s": round(result["total"], 3),
        "plan_s": result["plan_seconds"],
        "freeze_s": result["freeze"],
        **{f"{name}_s": round(value, 3) for name, value in seconds.items()},
        **{f"{name}_statements": number for name, number in calls.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="readers (default 100000)")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of each timed statement (PostgreSQL; slower)",
    )
    options = parser.parse_args()
    if options.explain and options.db != "postgresql":
        parser.error("--explain needs --db postgresql")
    print(f"bench_plan: {options.n} readers, {options.db}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as name:
        result = measure(options.n, options.db, Path(name), options.explain)
    print(json.dumps(report(options.n, options.db, result)))


if __name__ == "__main__":
    main()
