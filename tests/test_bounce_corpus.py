"""The bounce corpus over real SMTP into the receiver: every message comes out as
tests/data/bounces/expected.csv says (permanent, temporary, complaint, automatic reply, none)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from inbound import receiver
from inbound.models import MailEventRow
from mailer import verp
from mailer.segments import all_segments
from subscribers.models import Subscriber
from tests.campaign_helpers import reader
from tests.conftest import free_port
from tests.inbound_helpers import send

CORPUS = Path(__file__).parent / "data" / "bounces"
CASES = list(csv.DictReader((CORPUS / "expected.csv").open(encoding="utf-8")))
KINDS = {
    "hard_bounce": "permanent",
    "soft_bounce": "temporary",
    "complaint": "complaint",
    "auto_reply": "auto_reply",
}
# Reports count by the address they name only when they come to a delivery's own return path
# (a VERP token). Each message goes to the return path of its own delivery that is not in the
# database, so it is matched by the address in it, as after the delivery rows were removed.
NO_SUCH_DELIVERY = 2**31 - 1


@pytest.fixture
def running(app: Flask) -> Iterator[tuple[int, Any]]:
    """The receiver in this process (aiosmtpd's Controller), for the test's app."""
    app.config.update(
        BOUNCE_DOMAIN="bounce.newsletter.test", VERP_ENABLED=True, SOFT_BOUNCE_LIMIT=1000
    )
    port = free_port()
    server = receiver.controller(app, "127.0.0.1", port)
    server.start()
    yield port, app.config
    server.stop()


def _return_path(config: Any, index: int) -> str:
    return verp.return_path(config, NO_SUCH_DELIVERY - index)


def _readers(db: Session, app: Flask) -> dict[int, str]:
    """An active reader for every address the corpus names; their ids."""
    edition = all_segments(app.config["TOPICS"])[0]
    addresses = sorted({a.lower() for case in CASES for a in case["addresses"].split()})
    readers = [reader(address, edition) for address in addresses]
    db.add_all(readers)
    db.commit()
    return {r.id: r.email for r in readers}


def test_every_corpus_message_is_classified_as_expected(
    app: Flask, db: Session, running: tuple[int, Any]
) -> None:
    """Each of the 135 messages sent to a VERP return path yields exactly the events its row
    expects, matched to the readers it names; the score is printed, and must be all of them."""
    emails = _readers(db, app)
    port, config = running
    wrong = []
    last = 0
    for index, case in enumerate(CASES):
        raw = (CORPUS / case["file"]).read_bytes()
        code, reply = send(port, [_return_path(config, index)], raw)
        assert code == 250, (case["file"], reply)
        rows = db.execute(
            select(MailEventRow.kind, MailEventRow.subscriber_id).where(MailEventRow.id > last)
        ).all()
        db.rollback()
        last = db.scalar(select(func.max(MailEventRow.id))) or last
        kinds = {KINDS[kind] for kind, _ in rows} or {"none"}
        named = sorted(emails.get(s, "?") for kind, s in rows if kind != "auto_reply")
        if kinds != {case["expected"]} or named != sorted(case["addresses"].lower().split()):
            wrong.append((case["file"], case["expected"], case["addresses"], kinds, named))
    score = len(CASES) - len(wrong)
    print(f"\nbounce corpus: {score} of {len(CASES)} classified as expected")
    assert not wrong, wrong
    assert len(CASES) == 135


def test_the_corpus_delivered_twice_is_recorded_once(
    app: Flask, db: Session, running: tuple[int, Any]
) -> None:
    """Every report sent a second time is the same event: no new row, no second effect."""
    _readers(db, app)
    port, config = running
    for index, case in enumerate(CASES):
        send(port, [_return_path(config, index)], (CORPUS / case["file"]).read_bytes())
    first = db.scalar(select(func.count(MailEventRow.id)))
    statuses = {
        email: status for email, status in db.execute(select(Subscriber.email, Subscriber.status))
    }
    db.rollback()
    for index, case in enumerate(CASES):
        raw = (CORPUS / case["file"]).read_bytes()
        assert send(port, [_return_path(config, index)], raw)[0] == 250
    assert db.scalar(select(func.count(MailEventRow.id))) == first
    assert {
        email: status for email, status in db.execute(select(Subscriber.email, Subscriber.status))
    } == statuses
    assert first and first > 100
