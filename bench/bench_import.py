"""How long parsing the seed issue takes: ``python bench/bench_import.py [runs]``.

Prints the median time of N parses (default 50) and parses per second, for the seed and
the sample issue in both formats. Timing is measured here rather than asserted in a test,
since test machines differ in speed.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from issues.importer import parse_issue  # noqa: E402  (the path is set just above)

SEED = ROOT.parent / "shared" / "seed" / "000_ad8e7aff219fd574.txt"
FILES = (SEED, ROOT / "samples" / "sample-issue.txt", ROOT / "samples" / "sample-issue.md")


def median_seconds(data: bytes, filename: str, runs: int) -> float:
    """The median wall time of ``runs`` parses, after one warm-up parse."""
    parse_issue(data, filename=filename)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        parse_issue(data, filename=filename)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    runs = int(argv[1]) if len(argv) > 1 else 50
    if not SEED.is_file():
        print(f"The seed issue is missing: {SEED}", file=sys.stderr)
        return 1
    print(f"median of {runs} parses")
    for path in FILES:
        data = path.read_bytes()
        seconds = median_seconds(data, path.name, runs)
        print(
            f"{path.name:28} {len(data) / 1024:7.1f} KiB  {seconds * 1000:8.2f} ms"
            f"  {1 / seconds:8.1f} parses/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
