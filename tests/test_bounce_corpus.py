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
from inbound.classify import classify
from inbound.models import MailEventRow
from mailer import verp
from mailer.segments import all_segments
from subscribers.models import Subscriber
from tests.campaign_helpers import reader
from tests.conftest import free_port
from tests.inbound_helpers import real_deliveries
from tests.inbound_helpers import send

CORPUS = Path(__file__).parent / "data" / "bounces"
CASES = list(csv.DictReader((CORPUS / "expected.csv").open(encoding="utf-8")))
KINDS = {
    "hard_bounce": "permanent",
    "soft_bounce": "temporary",
    "complaint": "complaint",
    "auto_reply": "auto_reply",
}
# Each message goes to the return path of a real delivery of its own (to a reader of its own):
# a VERP token of a delivery that is not in the database matches nobody (review of issue 11;
# this test used tokens of deliveries that were not there, matched by the address in them).
# Whom a message names is checked on what the classifier reads; who is marked, in the database.


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


def _readers(db: Session, app: Flask, config: Any) -> tuple[dict[int, str], list[str]]:
    """An active reader for every address the corpus names, and one per message whose sent
    delivery it comes back to; the readers' ids and addresses, and each message's return path."""
    edition = all_segments(app.config["TOPICS"])[0]
    addresses = sorted({a.lower() for case in CASES for a in case["addresses"].split()})
    addresses += [f"case{index}@corpus.test" for index in range(len(CASES))]
    readers = [reader(address, edition) for address in addresses]
    db.add_all(readers)
    db.commit()
    emails = {r.id: r.email for r in readers}
    deliveries = real_deliveries(db, [r.id for r in readers[-len(CASES) :]])
    return emails, [verp.return_path(config, delivery) for delivery in deliveries]


def test_every_corpus_message_is_classified_as_expected(
    app: Flask, db: Session, running: tuple[int, Any]
) -> None:
    """Each of the 135 messages sent to a VERP return path yields exactly the events its row
    expects, matched to the readers it names; the score is printed, and must be all of them."""
    port, config = running
    emails, paths = _readers(db, app, config)
    wrong = []
    last = 0
    for index, case in enumerate(CASES):
        raw = (CORPUS / case["file"]).read_bytes()
        read = classify(raw, paths[index], config)
        addresses = sorted((e.address or "?").lower() for e in read if e.kind != "auto_reply")
        code, reply = send(port, [paths[index]], raw)
        assert code == 250, (case["file"], reply)
        rows = db.execute(
            select(MailEventRow.kind, MailEventRow.subscriber_id).where(MailEventRow.id > last)
        ).all()
        db.rollback()
        last = db.scalar(select(func.max(MailEventRow.id))) or last
        kinds = {KINDS[kind] for kind, _ in rows} or {"none"}
        marked = {emails.get(s or 0, "?") for _, s in rows}
        if (
            kinds != {case["expected"]}
            or addresses != sorted(case["addresses"].lower().split())
            or marked - {f"case{index}@corpus.test"}
        ):
            wrong.append((case["file"], case["expected"], case["addresses"], kinds, addresses))
    score = len(CASES) - len(wrong)
    print(f"\nbounce corpus: {score} of {len(CASES)} classified as expected")
    assert not wrong, wrong
    assert len(CASES) == 135


def test_the_corpus_delivered_twice_is_recorded_once(
    app: Flask, db: Session, running: tuple[int, Any]
) -> None:
    """Every report sent a second time is the same event: no new row, no second effect."""
    port, config = running
    _, paths = _readers(db, app, config)
    for index, case in enumerate(CASES):
        send(port, [paths[index]], (CORPUS / case["file"]).read_bytes())
    first = db.scalar(select(func.count(MailEventRow.id)))
    statuses = {
        email: status for email, status in db.execute(select(Subscriber.email, Subscriber.status))
    }
    db.rollback()
    for index, case in enumerate(CASES):
        raw = (CORPUS / case["file"]).read_bytes()
        assert send(port, [paths[index]], raw)[0] == 250
    assert db.scalar(select(func.count(MailEventRow.id))) == first
    assert {
        email: status for email, status in db.execute(select(Subscriber.email, Subscriber.status))
    } == statuses
    assert first and first > 100
