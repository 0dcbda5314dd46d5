"""The test SMTP sink itself: it counts connections and can refuse them like a relay that is down."""

from __future__ import annotations

import smtplib

import pytest

from tests.conftest import SmtpSink


def _message(number: int) -> bytes:
    return f"Subject: {number}\r\n\r\nbody {number}\r\n".encode()


def test_two_messages_over_one_connection_count_as_one(smtp_sink: SmtpSink) -> None:
    """A client that sends twice on one connection is seen as one connection, two messages."""
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("from@example.org", ["a@example.com"], _message(1))
        client.sendmail("from@example.org", ["b@example.com"], _message(2))
    assert smtp_sink.connections == 1
    assert [rcpts for _, rcpts, _ in smtp_sink.messages] == [["a@example.com"], ["b@example.com"]]


def test_two_connections_count_as_two(smtp_sink: SmtpSink) -> None:
    """Each new connection is counted, whether or not it sends anything."""
    for number in (1, 2):
        with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
            client.sendmail("from@example.org", ["a@example.com"], _message(number))
    assert smtp_sink.connections == 2
    assert len(smtp_sink.to("a@example.com")) == 2


def test_reset_starts_the_count_again(smtp_sink: SmtpSink) -> None:
    """A test starts from zero connections, whatever the tests before it did."""
    assert smtp_sink.connections == 0
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.noop()
    smtp_sink.reset()
    assert smtp_sink.connections == 0


@pytest.mark.parametrize("code", [421, 554])
def test_refused_connections_fail_the_client_at_the_greeting(
    smtp_sink: SmtpSink, code: int
) -> None:
    """While refusing, the sink greets with the code and closes: smtplib cannot connect."""
    smtp_sink.refuse_connections(code)
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10)
    assert refused.value.smtp_code == code
    assert b"Service not available" in refused.value.smtp_error
    assert smtp_sink.connections == 1 and smtp_sink.messages == []


def test_serving_again_after_refusals_end(smtp_sink: SmtpSink) -> None:
    """refuse_connections(None) lets the next connection through; a refused one still counts."""
    smtp_sink.refuse_connections(421)
    with pytest.raises(smtplib.SMTPConnectError):
        smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10)
    smtp_sink.refuse_connections(None)
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("from@example.org", ["a@example.com"], _message(1))
    assert smtp_sink.connections == 2
    assert len(smtp_sink.to("a@example.com")) == 1


def test_an_open_connection_is_not_cut_by_a_later_refusal(smtp_sink: SmtpSink) -> None:
    """Refusing applies to new connections: a session already open goes on sending."""
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        smtp_sink.refuse_connections(421)
        client.sendmail("from@example.org", ["a@example.com"], _message(1))
    assert len(smtp_sink.to("a@example.com")) == 1


def test_reset_ends_refusals(smtp_sink: SmtpSink) -> None:
    """A test never inherits refused connections from the one before it."""
    smtp_sink.refuse_connections(421)
    smtp_sink.reset()
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        assert client.noop()[0] == 250
