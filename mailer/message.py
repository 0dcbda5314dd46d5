"""Building a MIME message: headers checked, text and HTML parts, a Message-ID on our domain.

Header values are refused when they carry CR, LF or NUL, raw or once RFC 2047 encoded-words
are decoded. Python 3.11.7's email package does not refuse them itself (CVE-2024-6923), so a
header is never trusted to the standard library alone.

An issue email (``issue_message``) also carries the list headers (List-Id, List-Unsubscribe
with an https URL and a mailto, List-Unsubscribe-Post for RFC 8058 one-click) and, when
configured, a DKIM signature. Its bytes are fixed once built (``FixedMessage``): the email
package would otherwise re-encode a List-Unsubscribe URL longer than a 78-character line as
an RFC 2047 encoded-word, which mail clients do not read as a URL, and any refolding after
signing would break the signature.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from email.header import Header
from email.header import decode_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP as SMTP_POLICY
from email.policy import Policy
from email.utils import format_datetime
from typing import Any

from core.db import utcnow
from mailer import dkim
from mailer.render import RenderedSegment
from mailer.segments import Recipient

_FORBIDDEN = re.compile(r"[\r\n\x00]")


class HeaderInjection(ValueError):
    """A header value would have split the header block; the message names the header."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The {name} header contains a line break or NUL character and was refused."
        )
        self.header = name


def check_header(name: str, value: str) -> str:
    """Return ``value`` if it is safe as the value of header ``name``; raise otherwise."""
    if _FORBIDDEN.search(value):
        raise HeaderInjection(name)
    try:
        decoded = "".join(
            part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
            for part, charset in decode_header(value)
        )
    except (ValueError, LookupError):
        raise HeaderInjection(name) from None
    if _FORBIDDEN.search(decoded):
        raise HeaderInjection(name)
    return value


def make_message_id(domain: str) -> str:
    """A globally unique Message-ID on our own domain."""
    return f"<{uuid.uuid4().hex}@{check_header('Message-ID', domain)}>"


def mailbox(display_name: str, address: str) -> str:
    """A From/To value with the display name encoded as RFC 2047 requires."""
    check_header("display name", display_name)
    check_header("address", address)
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
    message = EmailMessage(policy=SMTP_POLICY)
    for name, value in headers.items():
        message[name] = check_header(name, value)
    if "Date" not in message:
        message["Date"] = format_datetime(utcnow())
    message.set_content(text, subtype="plain", charset="utf-8", cte=cte)
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte=cte)
    for header in set(message.keys()):
        for value in message.get_all(header, []):
            check_header(header, str(value))
    return message


# --- Issue emails -------------------------------------------------------------------------

# RFC 5322's hard limit on a header line, CRLF not counted.
MAX_LINE = 998
_URL_BREAKERS = re.compile(r"[\s<>,\"]")


class FixedMessage(EmailMessage):
    """A finished message whose bytes are final: serialising it returns exactly those bytes.

    Whatever policy a sender asks for, nothing is refolded or re-encoded, so the bytes a
    DKIM signature was made over are the bytes that go out.
    """

    fixed: bytes | None = None

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        if self.fixed is not None:
            return self.fixed
        return super().as_bytes(unixfrom, policy)


def check_url(name: str, url: str) -> str:
    """A URL fit to stand in angle brackets in a list header; refused otherwise."""
    check_header(name, url)
    if not url.isascii() or _URL_BREAKERS.search(url):
        raise ValueError(
            f"The {name} URL must be plain ASCII without spaces, quotes, commas or angle brackets."
        )
    return url


def list_header_lines(config: Mapping[str, Any], unsubscribe_url: str) -> bytes:
    """List-Id, List-Unsubscribe and List-Unsubscribe-Post, encoded and folded by hand.

    The unsubscribe URL stays whole on its line (up to 998 characters, as RFC 5322 allows)
    and the mailto follows on a folded line.
    """
    name = Header(check_header("List-Id", str(config["MAIL_FROM_NAME"])), "utf-8").encode()
    list_id = check_header("List-Id", str(config["LIST_ID"]))
    mailto = check_url(
        "List-Unsubscribe", f"mailto:{config['UNSUBSCRIBE_MAILTO']}?subject=unsubscribe"
    )
    lines = [
        f"List-Id: {name} <{list_id}>",
        f"List-Unsubscribe: <{check_url('List-Unsubscribe', unsubscribe_url)}>,",
        f" <{mailto}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]
    for line in lines:
        if len(line) > MAX_LINE or not line.isascii():
            raise ValueError(f"A list header line is too long or not ASCII: {line[:60]}…")
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def issue_message(
    rendered: RenderedSegment,
    recipient: Recipient,
    config: Mapping[str, Any],
    message_id: str | None = None,
) -> FixedMessage:
    """The email of one issue for one recipient: slots filled, headers checked, signed if set.

    Raises HeaderInjection for a header value with a line break, ValueError for an
    unusable URL and ``dkim.DkimError`` for DKIM settings that cannot sign.
    """
    personal = rendered.personalise(recipient)
    headers = {
        "From": mailbox(config["MAIL_FROM_NAME"], config["MAIL_FROM"]),
        "To": mailbox(recipient.name or "", recipient.email),
        "Subject": rendered.subject,
        "Message-ID": message_id or make_message_id(config["MESSAGE_ID_DOMAIN"]),
    }
    if config.get("MAIL_REPLY_TO"):
        headers["Reply-To"] = config["MAIL_REPLY_TO"]
    message = build_message(headers, personal.text, personal.html, cte="base64")
    payload = list_header_lines(config, recipient.unsubscribe_url) + message.as_bytes(
        policy=SMTP_POLICY
    )
    if dkim.enabled(config):
        payload = dkim.sign(payload, config)
    return fixed(payload)


def fixed(payload: bytes) -> FixedMessage:
    """``payload`` parsed for reading, and kept as the bytes to send."""
    message = BytesParser(_class=FixedMessage, policy=SMTP_POLICY).parsebytes(payload)
    assert isinstance(message, FixedMessage)
    message.fixed = payload
    return message
