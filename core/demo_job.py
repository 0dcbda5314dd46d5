"""The main job of ``make demo``: what it does once every service is up.

A test email; the sample issue imported and made ready; sample subscribers from CSV; a
signup on the public page; two fictional readers for every edition, a few who leave and one
who bounces; then the issue sent to them all and each edition's outcome checked against the
capture server.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

from core.config import ROOT
from core.demo import BOUNCED
from core.demo import CHINESE_NAMES
from core.demo import DEMO_EDITOR
from core.demo import EDITION_LINE
from core.demo import EDITIONS
from core.demo import LATIN_NAMES
from core.demo import LEAVERS
from core.demo import READER_DOMAIN
from core.demo import TOPICS
from core.demo import DemoError
from core.demo import flask
from core.demo import python


def main_job(env: dict[str, str]) -> list[str]:
    """The main job, end to end; returns what to tell the person at the terminal."""
    report = [send_test_email(env)]
    sample = ROOT / "samples" / "sample-issue.md"
    say(f"importing the sample issue {sample.relative_to(ROOT)}")
    stored = flask(env, "issue", "import", str(sample))
    number = _number(r"issue (\d+)", stored, "issue import")
    listed = flask(env, "issue", "list").strip().splitlines()
    report.append("issues in the database:\n    " + "\n    ".join(listed))
    say("importing sample subscribers from samples/subscribers.csv (one line is wrong on purpose)")
    counts = flask(env, "subscribers", "import", str(ROOT / "samples" / "subscribers.csv"),
                   "--consent", "make demo: fictional sample readers")  # fmt: skip
    report.append("subscribers: " + counts.strip().splitlines()[-1])
    report.append(web_signup(env))
    say(f"marking issue {number} ready: it is public in the archive and can be sent")
    report.append(flask(env, "issue", "ready", str(number)).strip())
    report.append(readers_for_every_edition(env))
    report.extend(send_issue(env, number))
    listed = flask(env, "issue", "list").strip().splitlines()
    report.append("issues after the send:\n    " + "\n    ".join(listed))
    return report


def _number(pattern: str, output: str, step: str) -> int:
    found = re.search(pattern, output)
    if found is None:
        raise DemoError(f"`{step}` did not say which number it gave:\n{output}")
    return int(found.group(1))


def readers_for_every_edition(env: dict[str, str]) -> str:
    """Two readers per edition from a CSV written here, then a few leave and one bounces."""
    path = workdir(env) / "demo-readers.csv"
    write_readers(path)
    say(f"importing {2 * len(EDITIONS)} readers, two for each of the {len(EDITIONS)} editions")
    flask(env, "subscribers", "import", str(path),
          "--consent", "make demo: fictional readers, two per edition")  # fmt: skip
    say(f"{len(LEAVERS)} of them unsubscribe; the address of one more bounced and is suppressed")
    counts = python(env, ["-m", "subscribers.demo"])
    return "subscribers by status: " + counts.strip()


def write_readers(path: Path) -> None:
    """The CSV of the demo's readers (the columns of samples/subscribers.csv)."""
    rows = []
    for index, (topics, edition, language) in enumerate(EDITIONS):
        for name, local in (CHINESE_NAMES[index], LATIN_NAMES[index]):
            rows.append((f"{local}@{READER_DOMAIN}", name, "", ";".join(topics), edition, language))
    for name, local in [*LEAVERS, BOUNCED]:
        rows.append((f"{local}@{READER_DOMAIN}", name, "", ";".join(TOPICS), "full", "zh"))
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("email", "name", "organisation", "topics", "format", "language", "member"))
        writer.writerows((*row, "no") for row in rows)


def send_issue(env: dict[str, str], number: int) -> list[str]:
    """Send the issue to every reader, wait for the end, and check each edition's outcome
    against what the capture server received: one message per reader sent, nobody twice."""
    before = set((workdir(env) / "mail").glob("*.eml"))
    say(f"sending issue {number} to every active reader, following the send to its end")
    started = flask(env, "campaign", "send", str(number), "--wait", timeout=180)
    campaign = _number(r"Campaign (\d+)", started, "campaign send")
    # The command's first line (what was started) and its last two (the end of the send).
    lines = started.strip().splitlines()
    print("  " + "\n  ".join([lines[0], "…", *lines[-2:]] if len(lines) > 3 else lines))
    status = flask(env, "campaign", "status", str(campaign)).splitlines()
    editions = [
        (match.group(1), int(match.group(2)), int(match.group(3)))
        for match in (EDITION_LINE.match(line) for line in status)
        if match
    ]
    sent = sum(count for _, count, _ in editions)
    captured = sorted(set((workdir(env) / "mail").glob("*.eml")) - before)
    problems = send_problems(status[0], editions, captured)
    if problems:
        raise DemoError("the send went wrong: " + "; ".join(problems) + "\n" + "\n".join(status))
    lines = [f"    {key:<32} {count:>3} sent" for key, count, _ in editions]
    return [
        f"campaign {campaign} of issue {number}: done, {sent} sent in {len(editions)} editions; "
        f"{len(captured)} messages captured, one per reader sent",
        "  sent per edition (topics/format/language):\n" + "\n".join(lines),
    ]


def send_problems(
    status: str, editions: list[tuple[str, int, int]], captured: list[Path]
) -> list[str]:
    """What is wrong with a finished send, in words; nothing when it all held."""
    from email import message_from_bytes
    from email.utils import parseaddr

    sent = sum(count for _, count, _ in editions)
    planned = sum(total for _, _, total in editions)
    recipients = {
        parseaddr(message_from_bytes(path.read_bytes())["To"] or "")[1] for path in captured
    }
    problems = []
    if status != "done":
        problems.append(f"the campaign is {status}, not done")
    if len(editions) != len(EDITIONS):
        problems.append(f"{len(editions)} editions were sent, not {len(EDITIONS)}")
    if sent != planned:
        problems.append(f"{sent} of {planned} readers were sent the issue")
    if len(captured) != sent:
        problems.append(f"{len(captured)} messages were captured for {sent} sent")
    if len(recipients) != len(captured):
        problems.append(f"{len(captured)} messages went to only {len(recipients)} addresses")
    return problems


def say(step: str) -> None:
    print(f"demo: {step} …", flush=True)


def workdir(env: dict[str, str]) -> Path:
    """The demo's working folder (``--dir``), as the services were told it: ``python -m
    core.demo`` runs that module as __main__, so its VAR cannot be imported from here."""
    return Path(env["NEWSLETTER_CAPTURE_DIR"]).parent


def captured_since(env: dict[str, str], before: set[Path], timeout: float = 60) -> Path:
    """The first message the capture server stores after ``before`` was taken."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = sorted(set((workdir(env) / "mail").glob("*.eml")) - before)
        if new:
            return new[0]
        time.sleep(0.2)
    raise DemoError(
        f"no message reached the capture server within {timeout:.0f} s; see {workdir(env) / 'log'}"
    )


def send_test_email(env: dict[str, str]) -> str:
    before = set((workdir(env) / "mail").glob("*.eml"))
    say("sending a test email through Redis, the worker and SMTP")
    print("  " + flask(env, "send-test", DEMO_EDITOR, "--wait", "60").strip().replace("\n", "\n  "))
    return f"test email captured: {captured_since(env, before)}"


def web_signup(env: dict[str, str]) -> str:
    """A reader subscribes through the public form, as a browser would; the confirmation arrives."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    say("a reader subscribes on the public page; the worker sends the confirmation email")
    base = env["NEWSLETTER_BASE_URL"]
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    page = opener.open(f"{base}/subscribe", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if token is None:
        raise DemoError("the subscribe page has no CSRF token")
    form = {"csrf_token": token.group(1), "email": "reader@example.org", "name": "示例读者",
            "topics": ["policy", "data"], "format": "digest", "language": "zh"}  # fmt: skip
    before = set((workdir(env) / "mail").glob("*.eml"))
    body = urllib.parse.urlencode(form, doseq=True).encode()
    request = urllib.request.Request(f"{base}/subscribe", data=body)  # noqa: S310 - our own http server
    opener.open(request, timeout=10).read()
    return f"confirmation email to reader@example.org captured: {captured_since(env, before)}"
