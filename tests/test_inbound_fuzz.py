"""Garbage into the running receiver (its own process): truncated MIME, wrong and unknown
charsets, a body past the size limit, deep multiparts, binary noise, headers only, and a forged
report to the bare bounce address. It answers each, keeps serving, and suppresses nobody."""

from __future__ import annotations

import random
import smtplib
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer import verp
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.campaign_helpers import add_readers
from tests.inbound_helpers import dsn
from tests.inbound_helpers import real_deliveries
from tests.inbound_helpers import send
from tests.inbound_helpers import start_receiver

BOUNCES = "bounces@bounce.newsletter.test"
LIMIT = 10_000_000


def _nested(depth: int, leaf: bytes) -> bytes:
    """A multipart ``depth`` levels deep, each level its own boundary, closed properly."""
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + leaf + tail


def _lines(data: bytes) -> bytes:
    """``data`` cut into 76-byte lines, as SMTP's line length limit wants."""
    flat = data.replace(b"\r", b" ").replace(b"\n", b" ")
    return b"\r\n".join(flat[i : i + 76] for i in range(0, len(flat), 76))


def _garbage(victims: list[str]) -> dict[str, bytes]:
    """Malformed messages, several naming a reader who must not be touched by them."""
    noise = random.Random(11)
    first, second, third = victims
    report = dsn(first, BOUNCES)
    cut = report.index(b"Action:")
    return {
        "truncated report": report[:cut],
        "truncated in base64": report.replace(
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64",
        )[: cut - 40]
        + b"5pys5pyf6KaB6Ze7",
        "unknown charset": (
            b"From: MAILER-DAEMON@relay.example.org\r\nSubject: =?x-klingon?Q?=FF=FE?=\r\n"
            b"Content-Type: text/plain; charset=x-klingon\r\n\r\n\xff\xfe\xfd " + second.encode()
        ),
        "wrong charset": (
            b"From: =?gb2312?B?" + b"\xd6\xd0" * 3 + b"?= <postmaster@163.com>\r\n"
            b"Subject: =?utf-8?B?6YCA5L+h?=\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            + "收件人：".encode("gb18030")
            + third.encode()
            + b"\r\n\xd6\xd0\xce\xc4\r\n"
        ),
        "deep multipart": _nested(60, b"Content-Type: text/plain\r\n\r\n" + first.encode()),
        "very deep multipart": _nested(3000, b"Content-Type: text/plain\r\n\r\nx"),
        "binary noise": _lines(bytes(noise.randrange(256) for _ in range(200_000))),
        "headers only": (
            f"From: MAILER-DAEMON@relay.example.org\r\nTo: {BOUNCES}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nX-Failed-Recipients: {second}\r\n"
        ).encode(),
        "empty": b"",
        "well-formed report to the bare address": dsn(third, BOUNCES),
        "NUL and lone CR": b"Subject: \x00\rBcc: x@example.org\r\n\r\n\x00\x00" + first.encode(),
        "report without parts": (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=zz\r\n\r\n"
            b"--zz\r\nContent-Type: message/delivery-status\r\n\r\n"
        ),
        "header without end": b"Subject: " + b"a" * 900 + b"\r\n" + b"X-Long: " + b"b" * 200_000,
        "large body under the limit": b"Subject: big\r\n\r\n" + _lines(b"0123456789" * 800_000),
    }


def test_malformed_mail_leaves_the_receiver_serving_and_nobody_suppressed(
    app: Flask, db: Session, settings: dict[str, Any], tmp_path: Path
) -> None:
    """Every malformed message gets an answer (250, or 552/500 for too much), the process stays
    up, no reader is marked and no address suppressed; a real report afterwards still works."""
    readers = add_readers(db, 4, app.config)
    victims = [r.email for r in readers[:3]]
    running = start_receiver(
        settings, tmp_path / "fuzz.log", BOUNCE_DOMAIN="bounce.newsletter.test"
    )
    try:
        answers = {}
        for name, raw in _garbage(victims).items():
            answers[name] = send(running.port, [BOUNCES], raw)[0]
            assert running.alive(), (name, running.output()[-2000:])
        assert answers.pop("header without end") == 500
        assert {name: code for name, code in answers.items() if code != 250} == {}

        # Past INBOUND_MAX_BYTES: the receiver says 552, reads no further, and carries on.
        huge = b"Subject: huge\r\n\r\n" + _lines(b"x" * (LIMIT + 100_000))
        assert send(running.port, [BOUNCES], huge)[0] == 552
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
            client.ehlo("relay.example.org")
            code, _ = client.mail("", [f"SIZE={LIMIT + 1}"])
            assert code == 552

        db.expire_all()
        assert set(db.scalars(select(Subscriber.status))) == {"active"}
        assert list(db.scalars(select(Suppression.id))) == []
        db.rollback()

        config = {**app.config, "VERP_ENABLED": True, "BOUNCE_DOMAIN": "bounce.newsletter.test"}
        # A real delivery's return path (review of issue 11: this used a token of a delivery
        # that was not there, matched by the address in the report, which now matches nobody).
        own = verp.return_path(config, real_deliveries(db, [readers[3].id])[0])
        # A real report whose server's words carry NUL and bytes of no charset is still stored.
        report = dsn(readers[3].email, own, diagnostic="smtp; 550 5.1.1 \x00gone MARK")
        report = report.replace(b"MARK", b"\xff\xfe")
        assert send(running.port, [own], report)[0] == 250
        assert db.scalar(select(Subscriber.status).where(Subscriber.id == readers[3].id)) == (
            "bounced"
        )
        assert running.alive()
        assert "Traceback" not in running.output()
    finally:
        running.stop()
