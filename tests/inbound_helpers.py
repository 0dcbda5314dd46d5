"""Shared arrangements of the inbound receiver tests: the receiver as its own process, a real
SMTP conversation with it, and the delivery reports a relay writes."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from core.db import utcnow
from issues.models import Issue
from tests.conftest import ROOT
from tests.conftest import free_port
from tests.conftest import settings_env


@dataclass
class Receiver:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_receiver(
    settings: dict[str, Any], log: Path, *arguments: str, **overrides: Any
) -> Receiver:
    """``flask --app web inbound serve`` on a free port, started and listening."""
    port = free_port()
    command = [sys.executable, "-m", "flask", "--app", "web", "inbound", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), *arguments]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=settings_env({**settings, **overrides}),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    receiver = Receiver(process, port, log)
    deadline = time.monotonic() + 30
    while b"receiving mail on" not in log.read_bytes():
        if not receiver.alive() or time.monotonic() > deadline:
            receiver.stop()
            raise AssertionError("the receiver did not start:\n" + receiver.output()[-3000:])
        time.sleep(0.05)
    return receiver


def send(
    port: int, recipients: list[str], raw: bytes, sender: str = "", timeout: float = 30
) -> tuple[int, str]:
    """One SMTP transaction; the first refusal's code and text, else the reply to DATA.
    Lines end in CR LF on the wire, as a relay sends them (the corpus files end in LF)."""
    raw = re.sub(rb"\r?\n", b"\r\n", raw)
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
        client.ehlo("relay.example.org")
        code, reply = client.mail(sender)
        if code != 250:
            return code, reply.decode(errors="replace")
        for recipient in recipients:
            code, reply = client.rcpt(recipient)
            if code != 250:
                return code, reply.decode(errors="replace")
        code, reply = client.data(raw)
        return code, reply.decode(errors="replace")


def dsn(
    to: str,
    return_path: str,
    *,
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{to}>: Recipient address rejected: User unknown",
    action: str = "failed",
    message_id: str = "<unrelated@elsewhere.example>",
    note: str = "",
) -> bytes:
    """The RFC 3464 report a Postfix relay writes when a reader's server refuses a message."""
    diagnostic = diagnostic.format(to=to)
    boundary = "4Q2vW71bkz9t.1764576006/relay.example.org"
    text = f"""From: MAILER-DAEMON@relay.example.org (Mail Delivery System)
To: {return_path}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"
Message-Id: <{hashlib.sha256((to + status + action).encode()).hexdigest()[:20]}@relay.example.org>

--{boundary}
Content-Type: text/plain; charset=utf-8

<{to}>: host mx.example.net said: {diagnostic[6:]}
{note}

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org

Final-Recipient: rfc822; {to}
Original-Recipient: rfc822;{to}
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic}

--{boundary}
Content-Type: text/rfc822-headers

From: newsletter@newsletter.test
To: {to}
Subject: =?utf-8?b?56ysMzYx5pyf?=
Message-ID: {message_id}

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode()


def real_deliveries(db: Any, subscriber_ids: list[int]) -> list[int]:
    """A sent delivery for each subscriber (one issue, one campaign): the ids, in order, for
    reports to come back to (a VERP token of a delivery that is not there matches nobody)."""
    issue = Issue(number=7000, title="Returned", status="sent", content_hash="")
    db.add(issue)
    db.flush()
    campaign = Campaign(issue_id=issue.id, status="done", created_by="editor@x.test")
    db.add(campaign)
    db.flush()
    segment = CampaignSegment(
        campaign_id=campaign.id,
        issue_id=issue.id,
        topics=(),
        format="html",
        locale="en",
        subject="Returned",
        html="",
        text="",
        nonce="0" * 32,
        greetings=[],
        view_online_url="",
        html_bytes=0,
    )
    db.add(segment)
    db.flush()
    rows = [
        Delivery(
            campaign_id=campaign.id,
            issue_id=issue.id,
            subscriber_id=subscriber_id,
            segment_id=segment.id,
            status="sent",
            sent_at=utcnow(),
        )
        for subscriber_id in subscriber_ids
    ]
    db.add_all(rows)
    db.commit()
    return [row.id for row in rows]
