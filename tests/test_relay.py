"""The relay client against a real SMTP server, pipelined (RFC 2920) and in lock-step."""

from __future__ import annotations

from typing import Any

import pytest

from mailer.message import FixedMessage
from mailer.smtp import Accepted
from mailer.smtp import PermanentFailure
from mailer.smtp import Relay
from mailer.smtp import RelayFailure
from mailer.smtp import TemporaryFailure
from mailer.smtp import dot_stuffed
from tests.conftest import SmtpSink

SENDER = "newsletter@example.org"


def relay_config(sink: SmtpSink) -> dict[str, Any]:
    return {
        "SMTP_HOST": sink.host,
        "SMTP_PORT": sink.port,
        "SMTP_TIMEOUT": 10,
        "SMTP_DATA_TIMEOUT": 600,
        "SMTP_SECURITY": "none",
        "SMTP_USERNAME": "",
        "SMTP_PASSWORD": "",
    }


def message(number: int, body: bytes = b"") -> FixedMessage:
    return FixedMessage(
        f"Subject: {number}\r\nMessage-ID: <m{number}@example.org>\r\n\r\n".encode()
        + (body or f"body {number}\r\n".encode())
    )


@pytest.fixture(params=["pipelined", "lock-step"])
def sink(request: pytest.FixtureRequest, smtp_sink: SmtpSink) -> SmtpSink:
    """The sink with PIPELINING offered, and without it."""
    smtp_sink.pipelining = request.param == "pipelined"
    return smtp_sink


def test_messages_go_over_one_connection_and_the_queue_reply_is_kept(sink: SmtpSink) -> None:
    """Three messages share one session; each result holds the relay's 250 reply."""
    with Relay(relay_config(sink)) as relay:
        results = [relay.send(message(n), SENDER, f"r{n}@example.com") for n in range(3)]
    assert all(isinstance(r, Accepted) and r.code == 250 for r in results)
    assert "queued as SINK" in results[0].reply
    assert sink.connections == 1
    assert [rcpts for _, rcpts, _ in sink.messages] == [[f"r{n}@example.com"] for n in range(3)]
    # Pipelined only when the relay offered it.
    assert sink.pipelined == (3 if sink.pipelining else 0)


def test_a_refused_recipient_fails_alone_and_the_session_goes_on(sink: SmtpSink) -> None:
    """A 550 for one reader is that reader's permanent failure at RCPT; the next one is sent."""
    sink.refuse("gone@example.com", 550, "5.1.1 no such user")
    sink.refuse("later@example.com", 450, "4.2.1 try later")
    with Relay(relay_config(sink)) as relay:
        with pytest.raises(PermanentFailure) as refused:
            relay.send(message(1), SENDER, "gone@example.com")
        with pytest.raises(TemporaryFailure) as deferred:
            relay.send(message(2), SENDER, "later@example.com")
        accepted = relay.send(message(3), SENDER, "here@example.com")
    assert (refused.value.code, refused.value.stage) == (550, "rcpt")
    assert (deferred.value.code, deferred.value.stage) == (450, "rcpt")
    assert not isinstance(deferred.value, RelayFailure)
    assert isinstance(accepted, Accepted)
    assert [rcpts for _, rcpts, _ in sink.messages] == [["here@example.com"]]
    assert sink.connections == 1


def test_a_refused_sender_is_the_relays_failure_at_mail(sink: SmtpSink) -> None:
    """MAIL FROM refused: a RelayFailure naming the stage, and nothing was delivered."""
    sink.refuse_senders(553, "5.7.1 sender not allowed")
    with Relay(relay_config(sink)) as relay, pytest.raises(RelayFailure) as failed:
        relay.send(message(1), SENDER, "r@example.com")
    assert (failed.value.code, failed.value.stage) == (553, "mail")
    assert sink.messages == []


def test_refused_content_fails_at_data(sink: SmtpSink) -> None:
    """A 554 after the content is that message's permanent failure at the data stage."""
    sink.refuse_data("r@example.com", 554, "5.6.0 content rejected")
    with Relay(relay_config(sink)) as relay:
        with pytest.raises(PermanentFailure) as failed:
            relay.send(message(1), SENDER, "r@example.com")
        relay.send(message(2), SENDER, "other@example.com")
    assert (failed.value.code, failed.value.stage) == (554, "data")
    assert [rcpts for _, rcpts, _ in sink.messages] == [["other@example.com"]]


def test_lines_that_start_with_a_dot_arrive_as_written(sink: SmtpSink) -> None:
    """Dot-stuffing: a line of one dot or starting with one does not end the message early."""
    body = b".\r\n..two\r\n.three\r\nlast line without a break"
    with Relay(relay_config(sink)) as relay:
        relay.send(message(1, body), SENDER, "r@example.com")
    content = sink.messages[0][2]
    assert content.endswith(b"\r\n\r\n.\r\n..two\r\n.three\r\nlast line without a break\r\n")


def test_a_dropped_connection_is_a_relay_failure_and_the_next_send_reconnects(
    sink: SmtpSink,
) -> None:
    """The relay drops the connection after a message: a RelayFailure, then a new session."""
    sink.refuse_data("drop@example.com", 0)
    with Relay(relay_config(sink)) as relay:
        with pytest.raises(RelayFailure) as failed:
            relay.send(message(1), SENDER, "drop@example.com")
        relay.send(message(2), SENDER, "r@example.com")
    assert failed.value.stage == "data"
    assert sink.connections == 2
    assert [rcpts for _, rcpts, _ in sink.messages] == [["r@example.com"]]


def test_a_421_that_closes_the_connection_fails_at_rcpt_with_the_relays_words(
    sink: SmtpSink,
) -> None:
    """A provider's "421 4.7.0 … try later" to RCPT, then a hang-up: the failure names the
    RCPT stage and keeps the reply (so the send backs off that domain), pipelined or not;
    the next message opens a new connection."""
    sink.refuse("busy@163.com", 421, "4.7.0 163.com: too many messages, try later", close=True)
    with Relay(relay_config(sink)) as relay:
        with pytest.raises(RelayFailure) as failed:
            relay.send(message(1), SENDER, "busy@163.com")
        relay.send(message(2), SENDER, "r@example.com")
    assert (failed.value.code, failed.value.stage) == (421, "rcpt")
    assert failed.value.reply.startswith("4.7.0 163.com: too many messages")
    assert sink.connections == 2
    assert [rcpts for _, rcpts, _ in sink.messages] == [["r@example.com"]]


def test_an_internationalised_address_without_smtputf8_fails_that_message_only(
    sink: SmtpSink,
) -> None:
    """A relay that does not offer SMTPUTF8 cannot take 读者@例子.中国: a permanent failure of
    that message (not the relay's), and the connection serves the next reader."""
    sink.smtputf8 = False
    with Relay(relay_config(sink)) as relay:
        with pytest.raises(PermanentFailure) as failed:
            relay.send(message(1), SENDER, "读者@例子.中国")
        relay.send(message(2), SENDER, "r@example.com")
    assert not isinstance(failed.value, RelayFailure)
    assert (failed.value.code, failed.value.stage) == (553, "rcpt")
    assert sink.connections == 1
    assert [rcpts for _, rcpts, _ in sink.messages] == [["r@example.com"]]


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        (b"a.b\r\nc.d\r\n", b"a.b\r\nc.d\r\n"),
        (b".x\r\n", b"..x\r\n"),
        (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n"),
        (b"line\n.\r\nQUIT\r\n", b"line\n..\r\nQUIT\r\n"),
        (b"no dot", b"no dot\r\n"),
    ],
)
def test_dot_stuffing_doubles_every_leading_dot(payload: bytes, wire: bytes) -> None:
    """A dot that starts a line, after CRLF or a bare LF (as smtplib stuffs), is doubled, so
    no content can end the message early or smuggle a command; the content ends in CRLF."""
    assert dot_stuffed(payload) == wire


def test_handed_over_holds_only_while_the_reply_to_a_content_is_awaited(sink: SmtpSink) -> None:
    """The batch counts a try when the relay fails with a message's content unanswered, so
    the flag must say exactly that: false once the relay answered (even with a refusal),
    true when the answer to the content never came, and false again for the next message
    if that one fails before its content is written (here: no connection at all)."""
    sink.refuse_data("full@example.com", 452, "4.3.1 Insufficient system storage")
    sink.delay_data("slow@example.com", 3)
    relay = Relay(relay_config(sink) | {"SMTP_DATA_TIMEOUT": 1})
    try:
        with pytest.raises(TemporaryFailure) as refused:
            relay.send(message(1), SENDER, "full@example.com")
        assert refused.value.code == 452 and not relay.handed_over
        with pytest.raises(RelayFailure) as lost:
            relay.send(message(2), SENDER, "slow@example.com")
        assert lost.value.stage == "data" and relay.handed_over
        sink.refuse_connections(421)
        with pytest.raises(RelayFailure) as unreachable:
            relay.send(message(3), SENDER, "next@example.com")
        assert unreachable.value.stage == "connect" and not relay.handed_over
    finally:
        sink.refuse_connections(None)
        relay.close()
