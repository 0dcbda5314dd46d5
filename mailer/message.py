"""Building a MIME message: headers checked, text and HTML parts, a Message-ID on our domain.

Header values are refused when they carry CR, LF or NUL, raw or once RFC 2047 encoded-words
are decoded. Python 3.11.7's email package does not refuse them itself (CVE-2024-6923), so a
header is never trusted to the standard library alone.

Single emails (``mailer.outbox``) and issue emails take From, Reply-To and To from the same two
functions here, ``sender_headers`` and ``recipient_mailbox``, so both follow one policy: a
configured value or an address that cannot be a header is refused, while a reader's name is
cleaned as in the greeting (``mailer.segments.clean_name``) and left out when it still cannot
be a header. A stored name never makes a reader's email unsendable.

An issue email (``issue_message``) also carries the list headers (List-Id, List-Unsubscribe
with an https URL and a mailto, List-Unsubscribe-Post for RFC 8058 one-click) and, when
configured, a DKIM signature. Its bytes are fixed once built (``FixedMessage``): the email
package would otherwise re-encode a List-Unsubscribe URL longer than a 78-character line as
an RFC 2047 encoded-word, which mail clients do not read as a URL, and any refolding after
signing would break the signature.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.header import decode_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP as SMTP_POLICY
from email.policy import Policy
from email.utils import format_datetime
from email.utils import getaddresses
from typing import Any

from core.db import utcnow
from mailer import dkim
from mailer import verp
from mailer.body import EncodedPart
from mailer.render import RenderedSegment
from mailer.segments import NAME_LIMIT
from mailer.segments import Recipient
from mailer.segments import clean_name
from mailer.segments import escaped_values
from mailer.segments import slot_values

# CR, LF and NUL, and the other characters Python's str.splitlines() treats as line breaks:
# the email package splits header values on those too.
_FORBIDDEN = re.compile("[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class HeaderInjection(ValueError):
    """A header value would have split the header block; the message names the header."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The {name} header contains a line break or NUL character and was refused."
        )
        self.header = name


def header_safe(value: str) -> bool:
    """Whether ``value`` holds no line break or NUL, raw or inside a decoded encoded-word."""
    if _FORBIDDEN.search(value):
        return False
    try:
        decoded = "".join(
            part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
            for part, charset in decode_header(value)
        )
    except (ValueError, LookupError):
        return False
    return not _FORBIDDEN.search(decoded)


def check_header(name: str, value: str) -> str:
    """Return ``value`` if it is safe as the value of header ``name``; raise otherwise."""
    if not header_safe(value):
        raise HeaderInjection(name)
    return value


def make_message_id(domain: str) -> str:
    """A globally unique Message-ID on our own domain."""
    return f"<{uuid.uuid4().hex}@{check_header('Message-ID', domain)}>"


def mailbox(display_name: str, address: str) -> str:
    """A From/To value with the display name encoded as RFC 2047 requires; refused if unsafe."""
    check_header("display name", display_name)
    check_header("address", address)
    return _mailbox(display_name, address)


def recipient_mailbox(name: str | None, address: str) -> str:
    """The To value for a reader: their name as the greeting shows it, or the address alone.

    The name is cleaned (one line, no control characters, 60 characters at most) and left
    out when the mailbox it makes still could not be a header, as with an encoded-word that
    hides a line break: a name never stops the email. An address that could split the header
    is refused with HeaderInjection, since it is where the email goes and nothing replaces it.
    """
    check_header("To", address)
    shown = clean_name(name)
    if not shown:
        return address
    value = _mailbox(shown, address)
    return value if header_safe(value) else address


# An address that needs no quoting in a header: a dot-atom local part and a plain ASCII domain.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def to_line(name: str | None, address: str) -> bytes:
    """The To header of an issue email, as ``recipient_mailbox`` decides it, CRLF ended.

    For the usual plain ASCII address it is written here directly (the name an RFC 2047
    phrase, folded with CRLF): the email package's header parser would take most of an
    email's building time to say the same. Any other address goes through the package.
    """
    check_header("To", address)
    if not _PLAIN_ADDRESS.fullmatch(address):
        return folded("To", recipient_mailbox(name, address), address)
    shown = clean_name(name)
    value = _name_and_address(phrase(shown, "To"), address) if shown else address
    # Checked unfolded: the folds are ours, what is between them is what a reader decodes.
    if not header_safe(value.replace("\r\n ", " ")):
        value = address
    return f"To: {value}\r\n".encode("ascii")


def _name_and_address(name: str, address: str) -> str:
    """A folded phrase and its address, the address on a line of its own when the name's last
    line would otherwise pass the 78 characters RFC 5322 recommends."""
    last = ("To: " + name).rsplit("\r\n", 1)[-1]
    separator = " " if len(last) + len(address) + 3 <= 78 else "\r\n "
    return f"{name}{separator}<{address}>"


def sender_headers(config: Mapping[str, Any]) -> dict[str, str]:
    """From, and Reply-To when configured: the same on every email we send.

    From is checked here, as a mailbox must be; Reply-To is checked where it is set into a
    message (``build_message``, ``folded``), like every other header value.
    """
    headers = {"From": mailbox(config["MAIL_FROM_NAME"], config["MAIL_FROM"])}
    if config.get("MAIL_REPLY_TO"):
        headers["Reply-To"] = str(config["MAIL_REPLY_TO"])
    return headers


def _mailbox(display_name: str, address: str) -> str:
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=display_name, username=local, domain=domain))


def build_message(
    headers: Mapping[str, str],
    text: str,
    html: str | None = None,
    *,
    cte: str = "quoted-printable",
) -> EmailMessage:
    """A message with a text part, and an HTML alternative when given.

    ``headers`` must hold From, To and Subject; Date is added when absent. ``cte`` is the
    body encoding: base64 keeps mostly-Chinese text a third of its quoted-printable size.
    """
    # A non-ASCII address cannot be an encoded-word (RFC 2047 forbids it in addresses): such a
    # message is written in UTF-8 (RFC 6532) and the relay is asked for SMTPUTF8. Only the
    # addresses decide: a Chinese display name or subject is written as encoded-words, since
    # the envelope of an ASCII address never asks for SMTPUTF8 and raw 8-bit headers would
    # then be a protocol violation that receivers may refuse or garble.
    ascii_only = all(
        address.isascii()
        for name in ("From", "To", "Reply-To")
        for _, address in getaddresses([headers.get(name, "")])
    )
    message = EmailMessage(policy=SMTP_POLICY if ascii_only else SMTP_POLICY.clone(utf8=True))
    for name, value in headers.items():
        message[name] = check_header(name, value)
    if "Date" not in message:
        message["Date"] = format_datetime(utcnow())
    message.set_content(text, subtype="plain", charset="utf-8", cte=cte)
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte=cte)
    return message


# --- Issue emails -------------------------------------------------------------------------

# RFC 5322's hard limit on a header line, CRLF not counted.
MAX_LINE = 998
_URL_BREAKERS = re.compile(r"[\s<>,\"]")
# A phrase made only of atoms and spaces needs neither quoting nor encoding (RFC 5322 3.2.3).
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
_UTF8_HEADERS = SMTP_POLICY.clone(utf8=True)
_PART_HEAD = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n'
)


class FixedMessage(EmailMessage):
    """A finished message whose bytes are final: serialising it returns exactly those bytes.

    Whatever policy a sender asks for, nothing is refolded or re-encoded, so the bytes a
    DKIM signature was made over are the bytes that go out. Parsing the bytes back into
    headers and parts costs as much as building them, and the send path only needs the
    bytes, so the message is parsed the first time anything else is read from it.
    """

    def __init__(self, payload: bytes) -> None:
        # No EmailMessage.__init__: its attributes come from parsing ``payload`` on demand.
        self.fixed = payload

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "fixed" not in self.__dict__ or "_headers" in self.__dict__:
            raise AttributeError(name)
        parsed = BytesParser(policy=SMTP_POLICY).parsebytes(self.fixed)
        self.__dict__.update(vars(parsed))
        return getattr(self, name)

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        return self.fixed


def check_url(name: str, url: str) -> str:
    """A URL fit to stand in angle brackets in a list header; refused otherwise."""
    check_header(name, url)
    if not url.isascii() or _URL_BREAKERS.search(url):
        raise ValueError(
            f"The {name} URL must be plain ASCII without spaces, quotes, commas or angle brackets."
        )
    return url


def phrase(text: str, header: str) -> str:
    """``text`` as an RFC 5322 phrase: as it is, quoted, or as encoded-words when not ASCII.

    Encoded-words are folded with CRLF, so a long name never puts a bare LF on the wire.
    """
    if not text.isascii():
        if len(text) <= NAME_LIMIT:
            return encoded_words(text)
        return Header(text, "utf-8", header_name=header).encode(linesep="\r\n")
    if _ATOMS.fullmatch(text) and "=?" not in text:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# UTF-8 bytes per encoded-word: 45 make 60 base64 characters, 72 with "=?utf-8?b?" and "?=",
# within the 75 RFC 2047 allows (and a line of 78 with the folding space and a short name).
_WORD_BYTES = 45


def encoded_words(text: str) -> str:
    """A short ``text`` as RFC 2047 "B" encoded-words, split between characters, CRLF-folded.

    The email package's ``Header`` says the same but costs a third of an issue email's
    building time; a reader's name (60 characters at most) needs only this much of it.
    """
    words, chunk = [], b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def folded(name: str, value: str, address: str = "") -> bytes:
    """One header, encoded and folded by the email package, CRLF line ends.

    An ``address`` that is not ASCII cannot be an encoded-word (RFC 2047 section 5), so its
    header is written in UTF-8 as RFC 6532 allows; the relay then asks for SMTPUTF8.
    """
    policy = SMTP_POLICY if address.isascii() else _UTF8_HEADERS
    line: str = policy.header_factory(name, check_header(name, value)).fold(policy=policy)
    return line.encode("utf-8")


def checked_head(head: bytes) -> bytes:
    """``head`` if every line ends in CRLF, holds no other CR or LF, and fits 998 octets."""
    lines = head.split(b"\r\n")
    if lines[-1] or any(b"\r" in line or b"\n" in line or len(line) > MAX_LINE for line in lines):
        raise ValueError("A header line is too long or holds a stray line break.")
    return head


@dataclass(frozen=True)
class IssueMail:
    """What one segment's email has in common for every recipient, built and checked once.

    ``message(recipient)`` then only encodes the slots into the pre-encoded parts
    (``mailer.body``) and writes the few headers that differ per recipient; the send path
    makes one IssueMail per segment.
    """

    rendered: RenderedSegment
    config: Mapping[str, Any]
    list_id: bytes
    mailto: str
    # A reader's own mailto is mailto_parts[0] + their token + mailto_parts[1] (mailer.verp).
    mailto_parts: tuple[str, str]
    sender: bytes
    rest: bytes
    text_part: EncodedPart
    html_part: EncodedPart

    def message(self, recipient: Recipient, message_id: str | None = None) -> FixedMessage:
        """The email for ``recipient``; refused like ``issue_message``, never for a name."""
        unsubscribe = check_url("List-Unsubscribe", recipient.unsubscribe_url)
        rendered = self.rendered
        values = slot_values(
            recipient, rendered.greetings, rendered.slots["name"], rendered.view_online_url
        )
        text = self.text_part.pieces(values)
        html = self.html_part.pieces(escaped_values(values))
        boundary = f"==============={secrets.randbelow(10**19):019d}=="
        identifier = message_id or make_message_id(self.config["MESSAGE_ID_DOMAIN"])
        mailto = self.mailto
        if recipient.subscriber_id is not None:
            # The token is digits, a hyphen and base32 between parts checked once: no check.
            reader = verp.token(self.config, verp.MAILTO_PURPOSE, recipient.subscriber_id)
            mailto = reader.join(self.mailto_parts)
        head = b"".join(
            [
                self.list_id,
                f"List-Unsubscribe: <{unsubscribe}>,\r\n <{mailto}>\r\n".encode("ascii"),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                self.sender,
                to_line(recipient.name, recipient.email),
                _message_id_line(identifier).join(self.rest.split(b"\0", 1)),
                f"Date: {format_datetime(utcnow())}\r\nMIME-Version: 1.0\r\n".encode("ascii"),
                f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
            ]
        )
        # One join for the whole email: its head, then the body's pieces.
        payload = b"".join([checked_head(head), *_body(boundary, text, html)])
        if dkim.enabled(self.config):
            payload = dkim.sign(payload, self.config)
        return FixedMessage(payload)


def _message_id_line(identifier: str) -> bytes:
    """Message-ID: ours are short ASCII; any other goes through the email package."""
    if identifier.isascii() and len(identifier) < 900 and header_safe(identifier):
        return f"Message-ID: {identifier}\r\n".encode("ascii")
    return folded("Message-ID", identifier)


def issue_mail(rendered: RenderedSegment, config: Mapping[str, Any]) -> IssueMail:
    """The per-segment part of an issue email: list headers, From, Subject, Reply-To."""
    name = check_header("List-Id", str(config["MAIL_FROM_NAME"]))
    list_id = check_header("List-Id", str(config["LIST_ID"]))
    label = f"{phrase(name, 'List-Id')} <{list_id}>" if name else f"<{list_id}>"
    mailto = check_url(
        "List-Unsubscribe", f"mailto:{config['UNSUBSCRIBE_MAILTO']}?subject=unsubscribe"
    )
    local, _, domain = str(config["UNSUBSCRIBE_MAILTO"]).rpartition("@")
    mailto_parts = (f"mailto:{local}+", f"@{domain}?subject=unsubscribe")
    sender = sender_headers(config)
    # Subject and Reply-To come between the per-recipient To and Date; a NUL marks where the
    # Message-ID goes (check_header refuses NUL in any value, so none can be there already).
    rest = [folded("Subject", rendered.subject), b"\0"]
    if "Reply-To" in sender:
        rest.append(folded("Reply-To", sender["Reply-To"]))
    return IssueMail(
        rendered=rendered,
        config=config,
        list_id=checked_head(f"List-Id: {label}\r\n".encode("ascii")),
        mailto=mailto,
        mailto_parts=mailto_parts,
        sender=folded("From", sender["From"], config["MAIL_FROM"]),
        rest=b"".join(rest),
        text_part=EncodedPart(rendered.text, rendered.slots.pattern),
        html_part=EncodedPart(rendered.html, rendered.slots.pattern),
    )


def issue_message(
    rendered: RenderedSegment,
    recipient: Recipient,
    config: Mapping[str, Any],
    message_id: str | None = None,
) -> FixedMessage:
    """The email of one issue for one recipient: slots filled, headers checked, signed if set.

    Raises HeaderInjection for a header value with a line break (a reader's name is cleaned
    or left out instead, see ``recipient_mailbox``), ValueError for an unusable URL and
    ``dkim.DkimError`` for DKIM settings that cannot sign. To send many, make ``issue_mail``
    once and call its ``message`` per recipient.
    """
    return issue_mail(rendered, config).message(recipient, message_id)


def _body(boundary: str, text: list[bytes], html: list[bytes]) -> list[bytes]:
    """The multipart/alternative body, in pieces: text first, then HTML, each UTF-8 in base64.

    Both parts come encoded (``mailer.body``), with CRLF line ends inside the encoding too,
    the canonical form of text (RFC 2046 4.1.1); base64 keeps every line within 76 octets
    and 7-bit clean.
    """
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return [
        delimiter,
        _PART_HEAD.format(subtype="plain").encode("ascii"),
        b"\r\n",
        *text,
        delimiter,
        _PART_HEAD.format(subtype="html").encode("ascii"),
        b"\r\n",
        *html,
        f"\r\n--{boundary}--\r\n".encode("ascii"),
    ]
