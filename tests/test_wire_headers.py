"""Every kind of email, as the relay receives it: 7-bit headers (RFC 2047 encoded-words for
Chinese names and subjects) whenever the envelope does not ask for SMTPUTF8, and UTF-8 headers
only with SMTPUTF8, for an address that is not ASCII (issue 13, point 6)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from core import db as core_db
from mailer import outbox
from mailer.message import issue_message
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from mailer.smtp import Relay
from subscribers.models import Subscriber
from tests.conftest import SmtpSink
from tests.test_segments import TOPICS
from tests.test_segments import seed

SINGLE_KINDS = ["confirm", "preferences_link", "test"]


def _reader(db: Session, address: str) -> Subscriber:
    subscriber = Subscriber(
        email=address,
        name="王小明",
        locale="zh",
        confirm_nonce="c" * 32,
        link_nonce="l" * 32,
    )
    db.add(subscriber)
    db.commit()
    return subscriber


def _send_single(app: Flask, kind: str, address: str) -> None:
    """Queue one email of ``kind`` through the outbox and deliver it to the sink."""
    with app.app_context():
        session = core_db.session()
        subscriber = session.query(Subscriber).filter_by(email=address).one()
        params: dict[str, Any] = {"subscriber_id": subscriber.id}
        row = outbox.queue(session, kind, address, "zh", lambda _id: None, **params)
        session.commit()
        claimed = outbox.claim(session, row.id)
        assert claimed is not None
        assert outbox.deliver(session, claimed, app.config).status == "sent"


def _head(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_single_emails_to_an_ascii_address_carry_only_7bit_headers(
    app: Flask, db: Session, smtp_sink: SmtpSink, kind: str
) -> None:
    """From 天堂之芯, a Chinese subject and the reader's Chinese name arrive as encoded-words
    over an envelope without SMTPUTF8, and read back as the Chinese they were."""
    app.config.update(MAIL_FROM_NAME="天堂之芯")
    _reader(db, "reader@example.com")
    _send_single(app, kind, "reader@example.com")
    [(_, rcpts, raw)] = smtp_sink.messages
    assert rcpts == ["reader@example.com"]
    assert _head(raw).isascii(), _head(raw)
    assert "SMTPUTF8" not in smtp_sink.mail_options[-1]
    email = BytesParser(policy=policy.default).parsebytes(raw)
    assert email["From"].addresses[0].display_name == "天堂之芯"
    assert not str(email["Subject"]).isascii()
    if kind != "test":
        assert email["To"].addresses[0].display_name == "王小明"


@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_a_non_ascii_address_gets_utf8_headers_and_smtputf8(
    app: Flask, db: Session, smtp_sink: SmtpSink, kind: str
) -> None:
    """An internationalised address cannot be an encoded-word: UTF-8 headers, with SMTPUTF8."""
    app.config.update(MAIL_FROM_NAME="天堂之芯")
    _reader(db, "读者@例子.中国")
    _send_single(app, kind, "读者@例子.中国")
    [(_, rcpts, raw)] = smtp_sink.messages
    assert rcpts == ["读者@例子.中国"]
    assert "SMTPUTF8" in smtp_sink.mail_options[-1]
    assert "读者@例子.中国".encode() in _head(raw)


def test_issue_emails_to_an_ascii_address_carry_only_7bit_headers(
    app: Flask, smtp_sink: SmtpSink
) -> None:
    """The issue email too: subject, From and the reader's name as encoded-words."""
    app.config.update(MAIL_FROM_NAME="天堂之芯")
    rendered = render_segment(seed(), make_segment(["policy"], "full", "zh", TOPICS), app.config)
    recipient = Recipient(
        "reader@example.com", "王小明", "zh", "https://x.test/u/1", "https://x.test/p/1"
    )
    with Relay(app.config) as relay:
        relay.send(
            issue_message(rendered, recipient, app.config), "news@example.org", recipient.email
        )
    [(_, _, raw)] = smtp_sink.messages
    assert _head(raw).isascii()
    assert "SMTPUTF8" not in smtp_sink.mail_options[-1]
    email = BytesParser(policy=policy.default).parsebytes(raw)
    assert email["To"].addresses[0].display_name == "王小明"
    assert email["From"].addresses[0].display_name == "天堂之芯"
