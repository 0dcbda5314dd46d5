"""Talking to the SMTP relay: one connection reused for many messages, replies classified.

The caller decides what a failure means. A ``TemporaryFailure`` (4xx, a dropped connection,
a timeout) is worth retrying later; a ``PermanentFailure`` (5xx) is not, and for a recipient
it means a hard bounce.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any


class DeliveryFailure(Exception):
    """The relay did not take the message; ``code`` and ``reply`` are what it said, and
    ``stage`` when: "connect" (greeting, TLS, AUTH), "mail" (the sender), "rcpt" (the
    recipient) or "data" (the content)."""

    def __init__(self, code: int, reply: str, stage: str = "data") -> None:
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply
        self.stage = stage


class TemporaryFailure(DeliveryFailure):
    """Try again later: 4xx, or the connection failed."""


class PermanentFailure(DeliveryFailure):
    """Do not try again: 5xx."""


class RelayFailure(TemporaryFailure):
    """The relay itself failed, not the recipient: it cannot be reached, refused the greeting,
    AUTH or TLS, answered 421 (closing), or dropped the connection. Never a bounce; a batch
    that meets one gives its recipients back and stops."""


# Enhanced status codes (RFC 3463) that mean the mailbox does not exist or cannot take mail:
# a hard bounce, which suppresses the address. Other 5xx (policy, content) fail the message only.
HARD_BOUNCE = re.compile(r"^5\.(?:1\.[0-6]|1\.9|1\.10|2\.1)\b")


def is_hard_bounce(failure: DeliveryFailure) -> bool:
    """True for a permanent refusal *of the recipient* that says the address itself is bad
    (5.1.1 and its kin, 5.2.1). A refused sender (5.1.7, 5.1.8, or any refusal of MAIL FROM)
    or content is never the reader's bounce: it would block every reader of a batch.

    A 550 with no enhanced code counts only when it is an RCPT refusal of the classic kind
    ("user unknown", "no such user", "mailbox unavailable").
    """
    if failure.stage != "rcpt" or not 500 <= failure.code < 600:
        return False
    text = failure.reply.strip()
    if HARD_BOUNCE.match(text):
        return True
    if re.match(r"^5\.\d+\.\d+", text) or _SENDER_WORDS.search(text):
        return False
    return failure.code in (550, 551, 553) and bool(_UNKNOWN_MAILBOX.search(text))


_SENDER_WORDS = re.compile(r"sender|\bfrom\b|\bIP\b|blocked|policy|spam", re.IGNORECASE)
_UNKNOWN_MAILBOX = re.compile(
    r"user unknown|unknown user|no such user|mailbox (?:unavailable|not found)|does not exist",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Accepted:
    code: int
    reply: str


def failure(code: int, reply: bytes | str, stage: str = "data") -> DeliveryFailure:
    """The right failure class for an SMTP reply: 421 means the relay is closing, and a
    refused sender is the relay's (or our configuration's) failure, never the reader's."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    if code == 421 or stage in ("connect", "mail"):
        return RelayFailure(code, text, stage)
    kind = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    return kind(code, text, stage)


# The commands sent together when pipelining, each with the replies that let it go on.
_PIPELINED = (("mail", (250,)), ("rcpt", (250, 251)), ("data", (354,)))


def dot_stuffed(payload: bytes) -> bytes:
    """The content with a second dot before each line that starts with one (RFC 5321
    4.5.2), after CRLF or a bare LF as smtplib does, and ending in CRLF. Each dot is looked
    at (a memchr): our emails hold a few dozen, all inside lines, and searching for a
    two-byte pattern instead would cost a tenth of a millisecond per email."""
    at = payload.find(b".")
    while at >= 0:
        if at == 0 or payload[at - 1] == 0x0A:
            payload = re.sub(rb"(?m)^\.", b"..", payload)
            break
        at = payload.find(b".", at + 1)
    return payload if payload.endswith(b"\r\n") else payload + b"\r\n"


# An address that is its own reverse- or forward-path inside angle brackets.
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"]+@[^\s<>()\[\]\\,;:\"@]+")


def _path(address: str) -> str:
    """``<address>`` for SMTP; smtplib's quoteaddr parses it as a header (a quarter of a
    millisecond) to say the same for the plain addresses we send to."""
    if _BARE_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


class Relay:
    """A connection to the configured relay, opened on entry and closed on exit."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.connection: smtplib.SMTP | None = None
        # Where the current transaction is, to name in a failure: connect, mail, rcpt, data.
        self.stage = "connect"
        # True from writing a message's content until the relay's reply to it is read: when
        # the reply is lost, the relay may have kept the message, and sending it again may
        # double it.
        self.handed_over = False

    def __enter__(self) -> Relay:
        self.connection = self._connect()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.quit()
        except (smtplib.SMTPException, OSError):
            self.connection.close()
        self.connection = None

    def _connect(self) -> smtplib.SMTP:
        host, port = self.config["SMTP_HOST"], int(self.config["SMTP_PORT"])
        timeout, security = self.config["SMTP_TIMEOUT"], self.config["SMTP_SECURITY"]
        try:
            if security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                connection = smtplib.SMTP(host, port, timeout=timeout)
            if connection.sock is not None:
                # Commands and the end of each message are short writes that the relay must
                # answer before we go on: Nagle's algorithm would hold each one back until
                # the previous message's last segment is acknowledged.
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if security == "starttls":
                connection.starttls(context=ssl.create_default_context())
            if self.config.get("SMTP_USERNAME"):
                connection.login(self.config["SMTP_USERNAME"], self.config["SMTP_PASSWORD"] or "")
        except smtplib.SMTPResponseException as error:
            # A refused greeting, STARTTLS or AUTH is the relay's failure, whatever its code.
            reply = error.smtp_error
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
            raise RelayFailure(error.smtp_code, text, "connect") from error
        except (OSError, smtplib.SMTPException) as error:
            raise RelayFailure(
                421, f"cannot reach the relay {host}:{port}: {error}", "connect"
            ) from error
        return connection

    def send(self, message: EmailMessage, sender: str, recipient: str) -> Accepted:
        """Send one message to one recipient over the open connection.

        The transaction is driven step by step, rather than through ``send_message``, so that
        the reply to DATA (which usually names the relay's queue id) is kept for the record.
        A relay that offers PIPELINING (RFC 2920) gets the envelope and DATA in one write.
        """
        self.handed_over = False
        if self.connection is None:
            # The connection was lost on an earlier message: open a new one (a RelayFailure
            # when that fails), so one dropped connection does not fail the rest of a batch.
            self.connection = self._connect()
        connection = self.connection
        # The message's own policy (CRLF, and UTF-8 headers where addresses need them) decides.
        payload = message.as_bytes()
        self.stage = "connect"
        try:
            connection.ehlo_or_helo_if_needed()
            # Non-ASCII addresses need SMTPUTF8; plain ones must not ask for it.
            if not (sender + recipient).isascii():
                code, reply = self._lock_step(connection, payload, sender, recipient, ["SMTPUTF8"])
            elif connection.has_extn("pipelining"):
                code, reply = self._pipelined(connection, payload, sender, recipient)
            else:
                code, reply = self._lock_step(connection, payload, sender, recipient, [])
        except smtplib.SMTPResponseException as error:
            self._reset_after_error()
            raise failure(error.smtp_code, error.smtp_error, self.stage) from error
        except smtplib.SMTPNotSupportedError as error:
            # An internationalised address, and a relay without SMTPUTF8: this message cannot
            # go through this relay, the connection is fine and the others can.
            raise PermanentFailure(
                553, f"the relay does not accept internationalised addresses: {error}", "rcpt"
            ) from error
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            # The connection is gone, and with it any certainty: the caller retries later.
            self.connection = None
            raise RelayFailure(421, f"connection lost: {error}", self.stage) from error
        return Accepted(code, reply.decode("utf-8", "replace"))

    def _lock_step(
        self,
        connection: smtplib.SMTP,
        payload: bytes,
        sender: str,
        recipient: str,
        options: list[str],
    ) -> tuple[int, bytes]:
        """MAIL, RCPT, DATA and the content, each waiting for its reply."""
        # The envelope: a refused sender or recipient ends this transaction only.
        self.stage = "mail"
        code, reply = connection.mail(sender, options)
        self._check(code, reply, (250,))
        self.stage = "rcpt"
        code, reply = connection.rcpt(recipient)
        self._check(code, reply, (250, 251))
        self.stage = "data"
        code, reply = connection.docmd("DATA")
        self._check(code, reply, (354,))
        return self._content(connection, payload)

    def _pipelined(
        self, connection: smtplib.SMTP, payload: bytes, sender: str, recipient: str
    ) -> tuple[int, bytes]:
        """RFC 2920: MAIL, RCPT and DATA in one write and their three replies read in order,
        then the content: two round trips a message instead of four."""
        self.stage = "mail"
        connection.send(f"MAIL FROM:{_path(sender)}\r\nRCPT TO:{_path(recipient)}\r\nDATA\r\n")
        (mail, mail_reply), (rcpt, rcpt_reply), (data, data_reply) = self._replies(connection)
        if data == 354 and (mail != 250 or rcpt not in (250, 251)):
            # A relay that opened DATA for a refused envelope: end the empty message at once.
            connection.send(b".\r\n")
            connection.getreply()
        self._check(mail, mail_reply, (250,))
        self.stage = "rcpt"
        self._check(rcpt, rcpt_reply, (250, 251))
        self.stage = "data"
        self._check(data, data_reply, (354,))
        return self._content(connection, payload)

    def _content(self, connection: smtplib.SMTP, payload: bytes) -> tuple[int, bytes]:
        """After DATA's 354: the message, ended by a lone dot, and the relay's reply to it
        (250, or a 4xx/5xx for the content)."""
        self.handed_over = True
        # Two writes rather than one copy of the ≈100 KB message with the end appended; the
        # socket has Nagle off (see _connect), so the short second write is not held back.
        connection.send(dot_stuffed(payload))
        connection.send(b".\r\n")
        code, reply = self._reply_to_content(connection)
        self.handed_over = False
        self._check(code, reply, (250,))
        return code, reply

    def _reply_to_content(self, connection: smtplib.SMTP) -> tuple[int, bytes]:
        """The reply after the final dot, waited for up to SMTP_DATA_TIMEOUT: the relay may
        be filtering or storing the message, and giving up sooner is what doubles mail
        (RFC 5321 4.5.3.2.6 asks for 10 minutes)."""
        sock = connection.sock
        if sock is None:
            return connection.getreply()
        sock.settimeout(float(self.config["SMTP_DATA_TIMEOUT"]))
        try:
            return connection.getreply()
        finally:
            sock.settimeout(float(self.config["SMTP_TIMEOUT"]))

    def _replies(self, connection: smtplib.SMTP) -> list[tuple[int, bytes]]:
        """The replies to MAIL, RCPT and DATA. A relay that refuses one and closes (as 421
        means) fails at that command, with its own words, as it would in lock-step."""
        replies: list[tuple[int, bytes]] = []
        try:
            for _ in _PIPELINED:
                replies.append(connection.getreply())
        except smtplib.SMTPServerDisconnected:
            self.connection = None
            for (stage, expected), (code, reply) in zip(_PIPELINED, replies, strict=False):
                if code not in expected:
                    self.stage = stage
                    raise failure(code, reply, stage) from None
            self.stage = _PIPELINED[len(replies)][0]
            raise
        return replies

    def _check(self, code: int, reply: bytes, expected: tuple[int, ...]) -> None:
        """Raise the failure for an unexpected reply, after resetting the session."""
        if code not in expected:
            self._reset_after_error()
            raise failure(code, reply, self.stage)

    def _reset_after_error(self) -> None:
        # After a refused transaction the session must be reset before the next MAIL FROM.
        try:
            if self.connection is not None:
                self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self.connection = None
