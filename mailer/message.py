"""Building a MIME message: headers checked, text and HTML parts, a Message-ID on our domain.

Header values are refused when they carry CR, LF or NUL, raw or once RFC 2047 encoded-words
are decoded. Python 3.11.7's email package does not refuse them itself (CVE-2024-6923), so a
header is never trusted to the standard library alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from email.header import decode_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

from core.db import utcnow

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


def build_message(headers: Mapping[str, str], text: str, html: str | None = None) -> EmailMessage:
    """A message with a text part, and an HTML alternative when given.

    ``headers`` must hold From, To and Subject; Date is added when absent.
    """
    message = EmailMessage(policy=SMTP_POLICY)
    for name, value in headers.items():
        message[name] = check_header(name, value)
    if "Date" not in message:
        message["Date"] = format_datetime(utcnow())
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for header in set(message.keys()):
        for value in message.get_all(header, []):
            check_header(header, str(value))
    return message
