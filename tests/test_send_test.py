"""The first real path: CLI → database row → Redis → Celery worker process → SMTP sink → row."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import OutboxMessage
from tests.conftest import SmtpSink
from tests.conftest import wait_until


def _outcome(db: Session, message_id: int) -> OutboxMessage | None:
    message = db.get(OutboxMessage, message_id, populate_existing=True)
    db.rollback()
    return message if message is not None and message.status in ("sent", "failed") else None


def test_send_test_delivers_through_the_worker(
    runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """send-test queues a row; the worker builds the bilingual email, sends it and records the reply."""
    result = runner.invoke(args=["send-test", "reader@example.com", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    message_id = db.scalars(select(OutboxMessage.id)).one()
    row = wait_until(lambda: _outcome(db, message_id))
    assert row.status == "sent" and row.smtp_code == 250
    assert "queued as SINK" in (row.smtp_reply or "")
    [email] = smtp_sink.to("reader@example.com")
    assert isinstance(email, EmailMessage)
    assert email["Message-ID"] == row.message_id and email["Message-ID"].endswith(
        "@newsletter.test>"
    )
    assert "测试邮件" in str(email["Subject"])
    html = email.get_body(("html",)).get_content()
    text = email.get_body(("plain",)).get_content()
    assert "经发送服务送到您的邮件服务器" in text and "<table" in html


def test_refused_recipient_is_recorded_as_failed(
    runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A 5xx answer to RCPT is permanent: the row says failed, with the relay's code and words."""
    smtp_sink.refuse("gone@example.com", 550, "5.1.1 No such user")
    result = runner.invoke(args=["send-test", "gone@example.com", "--wait", "30"])
    assert result.exit_code == 1
    row = db.scalars(select(OutboxMessage)).one()
    assert (row.status, row.smtp_code, row.attempts) == ("failed", 550, 1)
    assert "No such user" in (row.smtp_reply or "")
    assert smtp_sink.to("gone@example.com") == []


def test_temporary_refusal_is_retried_until_accepted(
    runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A 4xx answer leaves the row queued for another try; once the relay accepts, it is sent once."""
    smtp_sink.refuse("busy@example.com", 451, "4.7.1 Try again later")
    assert runner.invoke(args=["send-test", "busy@example.com"]).exit_code == 0
    message_id = db.scalars(select(OutboxMessage.id)).one()

    def retried() -> bool:
        row = db.get(OutboxMessage, message_id, populate_existing=True)
        db.rollback()
        return (
            row is not None
            and row.attempts >= 1
            and row.smtp_code == 451
            and row.status == "queued"
        )

    wait_until(retried)
    smtp_sink.refusals.clear()
    row = wait_until(lambda: _outcome(db, message_id), timeout=60)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_sink.to("busy@example.com")) == 1


def test_send_test_refuses_a_bad_address(runner: FlaskCliRunner, db: Session) -> None:
    """A malformed address is refused with one sentence and exit status 2, and nothing is queued."""
    result = runner.invoke(args=["send-test", "not-an-address"])
    assert result.exit_code == 2
    assert "not a usable email address" in result.output
    assert "Traceback" not in result.output
    assert db.scalars(select(OutboxMessage)).all() == []


def test_a_non_ascii_address_gets_a_utf8_message(
    runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """An internationalised address is delivered with SMTPUTF8 and a UTF-8 To header, not an encoded-word."""
    result = runner.invoke(args=["send-test", "读者@example.com", "--wait", "30"])
    assert result.exit_code == 0, result.output
    [raw] = [content for _, rcpts, content in smtp_sink.messages if "读者@example.com" in rcpts]
    assert "To: 读者@example.com".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0].split(b"To:", 1)[1].split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("code", "reply"), [(421, "4.3.0 Shutting down, try later"), (0, "")], ids=["421", "reset"]
)
def test_data_refused_for_now_or_cut_off_is_retried_then_sent_once(
    runner: FlaskCliRunner,
    db: Session,
    smtp_sink: SmtpSink,
    celery_worker: object,
    code: int,
    reply: str,
) -> None:
    """A 421 to DATA, or a connection lost before DATA's reply, is temporary: retried, then sent once."""
    smtp_sink.refuse_data("data@example.com", code, reply)
    assert runner.invoke(args=["send-test", "data@example.com"]).exit_code == 0
    message_id = db.scalars(select(OutboxMessage.id)).one()

    def retried() -> OutboxMessage | None:
        row = db.get(OutboxMessage, message_id, populate_existing=True)
        db.rollback()
        return row if row is not None and row.attempts >= 1 and row.status == "queued" else None

    row = wait_until(retried)
    assert row.smtp_code == 421
    smtp_sink.data_refusals.clear()
    row = wait_until(lambda: _outcome(db, message_id), timeout=60)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_sink.to("data@example.com")) == 1


def test_data_refused_for_good_is_failed(
    runner: FlaskCliRunner, db: Session, smtp_sink: SmtpSink, celery_worker: object
) -> None:
    """A 554 to DATA (content refused) is permanent: failed after one try, with the relay's words."""
    smtp_sink.refuse_data("spam@example.com", 554, "5.7.1 Message rejected as spam")
    result = runner.invoke(args=["send-test", "spam@example.com", "--wait", "30"])
    assert result.exit_code == 1
    row = db.scalars(select(OutboxMessage)).one()
    assert (row.status, row.smtp_code, row.attempts) == ("failed", 554, 1)
    assert "rejected as spam" in (row.smtp_reply or "")
