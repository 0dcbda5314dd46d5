"""How long storing an imported issue takes: ``python bench/bench_issue_store.py [runs]``.

For the seed issue and the sample, prints the median time of N parses and of N stores
(parse result → Issue/Section/Article rows, one committed transaction, on a fresh SQLite
file), and the ratio store/parse measured in the same run, so that a slow-down in the
storing half shows up against the parser's own speed on the same machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402  (the path is set just above)
from sqlalchemy import delete  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from core import create_app  # noqa: E402
from core import migrate  # noqa: E402
from issues import store as issues  # noqa: E402
from issues.models import Issue  # noqa: E402

SEED = ROOT.parent / "shared" / "seed" / "000_ad8e7aff219fd574.txt"
FILES = (SEED, ROOT / "samples" / "sample-issue.md")


def median_seconds(work: Callable[[], object], runs: int, reset: Callable[[], object]) -> float:
    """The median wall time of ``runs`` calls of ``work``, after one warm-up call."""
    reset()
    work()
    times = []
    for _ in range(runs):
        reset()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_file(app: Flask, session: Session, path: Path, runs: int) -> str:
    """One line of results for ``path``: parse and store medians, and their ratio."""
    data = path.read_bytes()
    parsed = issues.parse(data, path.name, app.config)

    def reset() -> None:
        session.execute(delete(Issue))
        session.commit()
        session.expunge_all()

    def store() -> None:
        issues.store_issue(session, parsed)
        session.commit()

    parse_s = median_seconds(lambda: issues.parse(data, path.name, app.config), runs, reset)
    store_s = median_seconds(store, runs, reset)
    return (
        f"{path.name:28} {len(parsed.articles):3} articles  parse {parse_s * 1000:7.2f} ms"
        f"  store {store_s * 1000:7.2f} ms  store/parse {store_s / parse_s:5.2f}"
    )


def main(argv: list[str]) -> int:
    runs = int(argv[1]) if len(argv) > 1 else 20
    if not SEED.is_file():
        print(f"The seed issue is missing: {SEED}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(url)
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "REDIS_URL": "memory://"})
        session: Session = app.extensions["db"]()
        print(f"median of {runs} runs on SQLite")
        for path in FILES:
            print(bench_file(app, session, path, runs))
        session.close()
        app.extensions["db"].kw["bind"].dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
