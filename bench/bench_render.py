"""Rendering cost: ``python bench/bench_render.py [runs]``.

Prints, for the seed issue: segment renders per second (each segment rendered whole, as a
campaign does once per segment), the cost of personalising one recipient's copy (slots
filled into the finished render), of building that copy's whole MIME message (as the send
path does: ``issue_mail`` once per segment, then ``message`` per recipient) against the
earlier way through the email package's builder, generator and parser, and the ratio of a
full render to a personalisation, which says how much rendering once per segment instead of
once per recipient saves. Timings are medians after a warm-up.

Then the bounds of fitting the budget (issue 13.4): for the seed's heaviest edition and for
300 and 1,200 short articles (too many to fit even as excerpts) and longer ones (which fit
once some are shortened), the seconds and the number of template renders one edition takes.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import SMTP
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mailer.render  # noqa: E402
from core.config import DEFAULTS  # noqa: E402  (the path is set just above)
from issues.importer import parse_issue  # noqa: E402
from mailer.message import build_message  # noqa: E402
from mailer.message import issue_mail  # noqa: E402
from mailer.message import mailbox  # noqa: E402
from mailer.message import make_message_id  # noqa: E402
from mailer.render import BudgetExceeded  # noqa: E402
from mailer.render import RenderedSegment  # noqa: E402
from mailer.render import render_segment  # noqa: E402
from mailer.segments import Recipient  # noqa: E402
from mailer.segments import all_segments  # noqa: E402
from mailer.segments import make_segment  # noqa: E402
from tests.test_render_bounds import Made  # noqa: E402  (the tests' synthetic issue)
from tests.test_render_bounds import Part  # noqa: E402
from tests.test_render_bounds import Piece  # noqa: E402

SEED = ROOT.parent / "shared" / "seed" / "000_ad8e7aff219fd574.txt"


def median_seconds(work: Callable[[], Any], runs: int) -> float:
    """The median wall time of ``runs`` calls of ``work``, after one warm-up call."""
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def recipient(number: int) -> Recipient:
    token = f"{number:08d}.Z3x9Qw.k2pVbYdE1fIu6mX8o0cQyT4nHrLsWaJgZvBe"
    return Recipient(
        f"reader{number}@example.com",
        f"读者{number}",
        "zh",
        f"https://news.example.org/unsubscribe/{token}",
        f"https://news.example.org/preferences/{token}",
    )


def email_package_message(rendered: RenderedSegment, reader: Recipient, config: Any) -> Any:
    """The baseline: the message built, serialised and parsed back by the email package."""
    personal = rendered.personalise(reader)
    headers = {
        "From": mailbox(config["MAIL_FROM_NAME"], config["MAIL_FROM"]),
        "To": mailbox(reader.name or "", reader.email),
        "Subject": rendered.subject,
        "Message-ID": make_message_id(config["MESSAGE_ID_DOMAIN"]),
    }
    message = build_message(headers, personal.text, personal.html, cte="base64")
    lists = (
        f"List-Id: {config['LIST_ID']}\r\nList-Unsubscribe: <{reader.unsubscribe_url}>,\r\n"
        f" <mailto:{config['UNSUBSCRIBE_MAILTO']}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    )
    payload = lists.encode() + message.as_bytes(policy=SMTP)
    return BytesParser(policy=SMTP).parsebytes(payload)


def made(count: int, words: str, repeat: int) -> Made:
    pieces = [Piece(f"第{n}篇", words * (repeat + n % 7)) for n in range(1, count + 1)]
    return Made([Part("芯动态", pieces)])


def counted_render(issue: Any, segment: Any, config: Any) -> tuple[float, int, str]:
    """Seconds, template renders and outcome of rendering one edition once."""
    real = mailer.render.render_pair
    calls = 0

    def counting(name: str, locale: str, **context: Any) -> tuple[str, str]:
        nonlocal calls
        calls += 1
        return real(name, locale, **context)

    mailer.render.render_pair = counting
    start = time.perf_counter()
    try:
        rendered = render_segment(issue, segment, config)
        outcome = f"{rendered.html_bytes:,} B, {len(rendered.shortened)} shortened"
    except BudgetExceeded:
        outcome = "over the budget even as excerpts"
    finally:
        mailer.render.render_pair = real
    return time.perf_counter() - start, calls, outcome


def bounds(config: dict[str, Any], seed: Any) -> None:
    heaviest = make_segment(config["TOPICS"], "full", "zh", config["TOPICS"])
    cases: list[tuple[str, Any, dict[str, Any]]] = [("seed issue", seed, config)]
    for count in (300, 1200):
        cases.append((f"{count} short articles", made(count, "短文章正文。", 20), config))
        longer = made(count, "较长的文章正文。", 60)
        whole = render_segment(longer, heaviest, {**config, "HTML_BUDGET_BYTES": 10**9})
        budget = {**config, "HTML_BUDGET_BYTES": whole.html_bytes - 20_000}
        cases.append((f"{count} longer articles, fitting", longer, budget))
    print(f"fitting the budget, edition {heaviest.key}:")
    for name, issue, settings in cases:
        seconds, calls, outcome = counted_render(issue, heaviest, settings)
        print(f"  {name:32} {seconds:7.2f} s {calls:5} renders  ({outcome})")


def main(argv: list[str]) -> int:
    runs = int(argv[1]) if len(argv) > 1 else 20
    if not SEED.is_file():
        print(f"The seed issue is missing: {SEED}", file=sys.stderr)
        return 1
    config = {key: default for key, (default, _) in DEFAULTS.items()}
    config["BASE_URL"] = "https://news.example.org"
    issue = parse_issue(SEED.read_bytes(), filename=SEED.name)
    segments = all_segments(config["TOPICS"])

    every = median_seconds(lambda: [render_segment(issue, s, config) for s in segments], runs)
    print(f"all {len(segments)} segments of the seed: {every * 1000:8.1f} ms")
    print(f"segment renders per second (mixed):   {len(segments) / every:8.1f}")

    heaviest = make_segment(config["TOPICS"], "full", "zh", config["TOPICS"])
    render = median_seconds(lambda: render_segment(issue, heaviest, config), runs)
    rendered = render_segment(issue, heaviest, config)
    print(
        f"heaviest segment {heaviest.key} ({rendered.html_bytes:,} B HTML, "
        f"{len(rendered.shortened)} shortened): {render * 1000:8.2f} ms"
    )
    counter = iter(range(10**9))
    personalise = median_seconds(lambda: rendered.personalise(recipient(next(counter))), runs * 50)
    mail = issue_mail(rendered, config)
    message = median_seconds(lambda: mail.message(recipient(next(counter))), runs * 25)
    baseline = median_seconds(
        lambda: email_package_message(rendered, recipient(next(counter)), config), runs * 5
    )
    print(f"personalise one recipient (slots):    {personalise * 1e6:8.1f} µs")
    print(f"build one recipient's MIME message:   {message * 1e6:8.1f} µs")
    print(f"  the same through the email package: {baseline * 1e6:8.1f} µs")
    print(f"  speed-up of the message build:      {baseline / message:8.1f}×")
    print(f"ratio full render / personalisation:  {render / personalise:8.1f}×")
    print(f"ratio full render / whole message:    {render / message:8.1f}×")
    bounds(config, issue)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
