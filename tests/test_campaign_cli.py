"""``flask issue ready|draft`` and ``flask campaign …``: the operator's way to publish an issue,
send it, follow the send and stop it, through the real worker and SMTP peer; refusals exit 2
with one sentence and write nothing."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import Delivery
from issues.models import Issue
from tests.campaign_helpers import add_bystanders
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import ledger
from tests.campaign_helpers import wait_for_status
from tests.conftest import SmtpSink
from tests.conftest import wait_until

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample-issue.md"
NUMBER = "400"


def cli(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=list(args))


def import_sample(runner: FlaskCliRunner, ready: bool = True) -> None:
    assert cli(runner, "issue", "import", str(SAMPLE)).exit_code == 0
    if ready:
        result = cli(runner, "issue", "ready", NUMBER)
        assert result.exit_code == 0, result.output


def refused(result: Result, words: str) -> None:
    """Exit status 2 and exactly one sentence on stderr, containing ``words``."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert lines[0].endswith("."), lines[0]


def issue_status(db: Session) -> str:
    status = db.scalar(select(Issue.status).where(Issue.number == int(NUMBER)))
    db.rollback()
    return str(status)


def campaign_count(db: Session) -> int:
    count = db.scalar(select(func.count()).select_from(Campaign)) or 0
    db.rollback()
    return count


def campaign_id(result: Result) -> int:
    found = re.search(r"^Campaign (\d+)", result.stdout, re.MULTILINE)
    assert found, result.output
    return int(found.group(1))


def local(moment: datetime, app: Flask) -> str:
    """``moment`` as an operator types it, in the configured time zone."""
    return moment.astimezone(ZoneInfo(app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M")


def envelopes(sink: SmtpSink) -> list[str]:
    return sorted(rcpt.lower() for _, rcpts, _ in sink.messages for rcpt in rcpts)


# --- issue ready / draft -----------------------------------------------------------------


def test_ready_publishes_and_draft_withdraws(
    app: Flask, runner: FlaskCliRunner, db: Session
) -> None:
    """A draft made ready is in the public archive; set back to draft it is gone again."""
    import_sample(runner, ready=False)
    client = app.test_client()
    assert client.get(f"/issues/{NUMBER}").status_code == 404

    result = cli(runner, "issue", "ready", NUMBER)
    assert result.exit_code == 0, result.output
    assert "Issue 400 is ready to send and public in the archive at" in result.stdout
    assert "http://newsletter.test/issues/400" in result.stdout
    assert issue_status(db) == "ready"
    assert client.get(f"/issues/{NUMBER}").status_code == 200
    again = cli(runner, "issue", "ready", NUMBER)
    assert (again.exit_code, again.stdout.strip()) == (
        0,
        "Issue 400 was already ready to send; nothing changed.",
    )

    result = cli(runner, "issue", "draft", NUMBER)
    assert result.exit_code == 0, result.output
    assert "Issue 400 is a draft again" in result.stdout
    assert issue_status(db) == "draft"
    assert client.get(f"/issues/{NUMBER}").status_code == 404


@pytest.mark.parametrize("command", ["ready", "draft"])
@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("999", "There is no issue 999"),
        ("0", "'0' is not an issue number"),
        ("four", "'four' is not an issue number"),
        ("99999999999", "is not an issue number"),
    ],
)
def test_issue_status_refuses_unknown_numbers(
    runner: FlaskCliRunner, db: Session, command: str, number: str, words: str
) -> None:
    """A number that names no issue is refused in one sentence; the stored issue is untouched."""
    import_sample(runner, ready=command == "draft")
    before = issue_status(db)
    refused(cli(runner, "issue", command, number), words)
    assert issue_status(db) == before


@pytest.mark.parametrize("command", ["ready", "draft"])
def test_a_sent_issue_stays_sent(runner: FlaskCliRunner, db: Session, command: str) -> None:
    """Neither command changes an issue that has been sent."""
    import_sample(runner, ready=False)
    db.execute(update(Issue).values(status="sent"))
    db.commit()
    refused(cli(runner, "issue", command, NUMBER), "Issue 400 has already been sent and stays sent")
    assert issue_status(db) == "sent"


# --- campaign send --wait, status, list ----------------------------------------------------


def test_send_and_wait_delivers_one_message_per_active_reader(
    app: Flask, runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: Any
) -> None:
    """Six active readers and thirteen who must get nothing: six messages, the send done."""
    import_sample(runner)
    readers = add_readers(db, 6, app.config)
    bystanders = add_bystanders(db, app.config)

    result = cli(runner, "campaign", "send", NUMBER, "--wait")
    assert result.exit_code == 0, result.output
    number = campaign_id(result)
    assert f"Campaign {number}: issue 400 is going to its readers, 6 now" in result.stdout
    assert "done: 6 of 6 settled (100%): 6 sent" in result.stdout
    assert result.stdout.strip().endswith(f"Campaign {number} is done.")
    assert envelopes(smtp_sink) == sorted(reader.email for reader in readers)
    assert not set(bystanders) & set(envelopes(smtp_sink))
    assert ledger(db, number) == {"sent": 6}
    assert issue_status(db) == "sent"

    status = cli(runner, "campaign", "status", str(number))
    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert lines[0] == "done"
    assert re.search(r"^sent\s+6$", status.stdout, re.MULTILINE)
    assert re.search(r"^failed\s+0$", status.stdout, re.MULTILINE)
    assert re.search(r"^total\s+6$", status.stdout, re.MULTILINE)
    editions = [
        line for line in lines if re.match(r"^\s+\S+/(full|digest)/(zh|en)\s+1 of 1$", line)
    ]
    assert len(editions) == 6

    listed = cli(runner, "campaign", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.startswith(f"{number}\tissue 400\tdone\t6 of 6 sent\teveryone\tcreated ")
    assert listed.stdout.strip().endswith("by cli")

    # A finished send can be neither paused, nor resumed, nor cancelled.
    for action, words in (
        ("pause", f"Campaign {number} is done; only a running send can be paused"),
        ("resume", f"Campaign {number} is done; only a paused send can be resumed"),
        ("cancel", f"Campaign {number} is done: it has already ended"),
    ):
        refused(cli(runner, "campaign", action, str(number)), words)
    assert ledger(db, number) == {"sent": 6}
    # Sending again: everyone has the issue; only new subscribers could get it now.
    refused(cli(runner, "campaign", "send", NUMBER), "send it to new subscribers instead")
    refused(cli(runner, "campaign", "send", NUMBER, "--new-subscribers"), "No reader is waiting")
    assert campaign_count(db) == 1


def test_a_relay_that_is_down_pauses_the_wait_and_resume_finishes(
    app: Flask, runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: Any
) -> None:
    """The relay answers 421 to everyone: the send pauses itself, --wait exits 1 saying why;
    once the relay is back, resume sends each reader exactly one message."""
    import_sample(runner)
    readers = add_readers(db, 3, app.config)
    for reader in readers:
        smtp_sink.refuse(reader.email, 421, "4.3.2 Service shutting down")

    result = cli(runner, "campaign", "send", NUMBER, "--wait")
    assert result.exit_code == 1, result.output
    number = campaign_id(result)
    assert f"Campaign {number} paused: The mail server failed 3 times in a row" in result.stdout
    assert f"`flask campaign resume {number}` continues it." in result.stdout
    status = cli(runner, "campaign", "status", str(number))
    assert status.stdout.splitlines()[0] == "paused"
    assert "paused: The mail server failed 3 times in a row" in status.stdout
    assert smtp_sink.messages == []
    refused(cli(runner, "campaign", "pause", str(number)), "only a running send can be paused")

    smtp_sink.refusals.clear()
    resumed = cli(runner, "campaign", "resume", str(number))
    assert resumed.exit_code == 0, resumed.output
    assert f"Campaign {number} is running again" in resumed.stdout
    wait_for_status(db, number, "done", timeout=60)
    assert envelopes(smtp_sink) == sorted(reader.email for reader in readers)
    assert cli(runner, "campaign", "status", str(number)).stdout.splitlines()[0] == "done"


def test_pause_and_resume_a_running_send(
    app: Flask, runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: Any
) -> None:
    """While one reader's mailbox defers, the send runs; pause holds it, resume finishes it."""
    import_sample(runner)
    readers = add_readers(db, 3, app.config)
    slow = readers[0].email
    smtp_sink.refuse(slow, 451, "4.2.1 Mailbox busy")
    number = campaign_id(cli(runner, "campaign", "send", NUMBER))

    def deferred() -> bool:
        """The busy reader is waiting for a retry, the others are sent."""
        return ledger(db, number) == {"sent": 2, "retry": 1}

    wait_until(deferred, timeout=60)
    paused = cli(runner, "campaign", "pause", str(number))
    assert paused.exit_code == 0, paused.output
    assert f"Campaign {number} is paused" in paused.stdout
    assert cli(runner, "campaign", "status", str(number)).stdout.splitlines()[0] == "paused"
    refused(cli(runner, "campaign", "pause", str(number)), "is paused; only a running send")

    smtp_sink.refusals.clear()
    assert cli(runner, "campaign", "resume", str(number)).exit_code == 0
    wait_for_status(db, number, "done", timeout=60)
    assert envelopes(smtp_sink) == sorted(reader.email for reader in readers)
    assert ledger(db, number) == {"sent": 3}


# --- scheduled sends and refusals ----------------------------------------------------------


def test_a_scheduled_send_in_local_time_can_be_cancelled(
    app: Flask, runner: FlaskCliRunner, db: Session
) -> None:
    """--at is read in TIMEZONE and stored as UTC; a waiting send cannot be paused or resumed,
    nor can a second send of the issue begin beside it; cancelled, it cannot end twice."""
    import_sample(runner)
    add_readers(db, 2, app.config)
    result = cli(runner, "campaign", "send", NUMBER, "--at", "2099-01-02 09:30",
                 "--not-after", "2099-01-02 12:00")  # fmt: skip
    assert result.exit_code == 0, result.output
    number = campaign_id(result)
    assert "goes to its readers at 2099-01-02 09:30 Asia/Shanghai, not after 2099-01-02 12:00" in (
        result.stdout
    )
    campaign = db.get(Campaign, number)
    assert campaign is not None
    assert campaign.status == "scheduled" and campaign.created_by == "cli"
    assert campaign.send_at == datetime(2099, 1, 2, 1, 30, tzinfo=UTC)
    assert campaign.not_after == datetime(2099, 1, 2, 4, 0, tzinfo=UTC)
    db.rollback()
    status = cli(runner, "campaign", "status", str(number)).stdout.splitlines()
    assert status[0] == "scheduled"
    assert "starts at 2099-01-02 09:30 (Asia/Shanghai)" in status

    refused(cli(runner, "campaign", "pause", str(number)), "is scheduled; only a running send")
    refused(cli(runner, "campaign", "resume", str(number)), "is scheduled; only a paused send")
    refused(cli(runner, "campaign", "send", NUMBER), "This issue is already being sent")
    cancelled = cli(runner, "campaign", "cancel", str(number))
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Campaign {number} is cancelled" in cancelled.stdout
    refused(cli(runner, "campaign", "cancel", str(number)), "is cancelled: it has already ended")
    assert campaign_count(db) == 1
    assert db.scalar(select(func.count()).select_from(Delivery)) == 0


SOON = datetime.now(UTC) + timedelta(days=2)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["999"], "There is no issue 999"),
        (["four hundred"], "There is no issue four hundred"),
        (["400", "--at", "tomorrow"], "--at 'tomorrow' is not a time"),
        (["400", "--at", "2026-02-30 10:00"], "is not a time; write it as 'YYYY-MM-DD HH:MM'"),
        (["400", "--at", "2020-05-01 09:00"], "The --at time 2020-05-01 09:00 has already passed"),
        (
            ["400", "--not-after", "2020-05-01 09:00"],
            "--not-after time 2020-05-01 09:00 has already",
        ),
        (["400", "--not-after", "05/01/2099"], "--not-after '05/01/2099' is not a time"),
        (
            ["400", "--new-subscribers"],
            "Only an issue that has been sent can go to new subscribers",
        ),
    ],
)
def test_send_refuses_bad_arguments(
    app: Flask, runner: FlaskCliRunner, db: Session, arguments: list[str], words: str
) -> None:
    """Each wrong argument is refused in one sentence, and no campaign is written."""
    import_sample(runner)
    add_readers(db, 2, app.config)
    refused(cli(runner, "campaign", "send", *arguments), words)
    assert campaign_count(db) == 0
    assert issue_status(db) == "ready"


def test_send_refuses_a_deadline_before_the_start(
    app: Flask, runner: FlaskCliRunner, db: Session
) -> None:
    """--not-after before --at can never be met: refused, nothing written."""
    import_sample(runner)
    add_readers(db, 2, app.config)
    start, deadline = local(SOON, app), local(SOON - timedelta(hours=1), app)
    result = cli(runner, "campaign", "send", NUMBER, "--at", start, "--not-after", deadline)
    refused(result, "must come after the start time")
    assert campaign_count(db) == 0


@pytest.mark.parametrize(
    ("ready", "readers", "words"),
    [
        (False, 2, "Mark the issue ready before sending it"),
        (True, 0, "No reader is waiting for this issue"),
    ],
    ids=["draft-issue", "no-readers"],
)
def test_send_refuses_what_cannot_be_sent(
    app: Flask, runner: FlaskCliRunner, db: Session, ready: bool, readers: int, words: str
) -> None:
    """A draft issue, or an issue nobody is waiting for, is not sent; nothing is written."""
    import_sample(runner, ready=ready)
    if readers:
        add_readers(db, readers, app.config)
    refused(cli(runner, "campaign", "send", NUMBER), words)
    assert campaign_count(db) == 0


@pytest.mark.parametrize("action", ["status", "pause", "resume", "cancel"])
@pytest.mark.parametrize("given", ["7", "seven", "0", "99999999999"])
def test_unknown_campaigns_are_refused(runner: FlaskCliRunner, action: str, given: str) -> None:
    """An id that names no campaign is refused in one sentence."""
    refused(cli(runner, "campaign", action, given), f"There is no campaign {given}")


def test_list_says_when_nothing_was_sent(runner: FlaskCliRunner) -> None:
    """An empty list says so, rather than printing nothing."""
    result = cli(runner, "campaign", "list")
    assert (result.exit_code, result.stdout.strip()) == (0, "No issue has been sent yet.")
