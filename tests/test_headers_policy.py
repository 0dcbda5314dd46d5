"""One rule for From, Reply-To and To: single emails and issue emails build them the same way.

A reader's name is cleaned as in the greeting, or left out when it still cannot be a header;
it never stops the email. An address, or a configured value, that could split the header
block is refused.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from mailer import outbox
from mailer.message import HeaderInjection
from mailer.message import build_message
from mailer.message import issue_message
from mailer.message import recipient_mailbox
from mailer.models import OutboxMessage
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from subscribers import emails
from subscribers.models import Subscriber
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

ADDRESS = "reader@example.com"
HOSTILE = '<b>Mal</b>"lory" <evil@example.net>, Bcc: x@example.net'
# (stored name, the To header a receiver reads)
NAMES = [
    (None, ADDRESS),
    ("", ADDRESS),
    ("王小明", f"王小明 <{ADDRESS}>"),
    ("Ann\tLee", f"Ann Lee <{ADDRESS}>"),
    ("Eve\r\nBcc: victim@example.com", f'"Eve Bcc: victim@example.com" <{ADDRESS}>'),
    ("Eve\nBcc: victim@example.com", f'"Eve Bcc: victim@example.com" <{ADDRESS}>'),
    ("Eve\x00", f"Eve <{ADDRESS}>"),
    ("Eve\x85Bcc: x@example.net", f'"Eve Bcc: x@example.net" <{ADDRESS}>'),
    ("Ann\u2028Lee", f"Ann Lee <{ADDRESS}>"),
    ("\r\n\t\u200b", ADDRESS),
    ("=?utf-8?q?Hi=0D=0ABcc=3A_v=40example=2Ecom?=", ADDRESS),
    ("=?x-unknown?q?Hi?=", ADDRESS),
    (HOSTILE, f'"{HOSTILE.replace(chr(34), chr(92) + chr(34))}" <{ADDRESS}>'),
]
NAME_IDS = [
    "none",
    "empty",
    "chinese",
    "tab",
    "crlf",
    "lf",
    "nul",
    "nel",
    "line-separator",
    "only-controls",
    "encoded-crlf",
    "unknown-charset",
    "header-syntax",
]


def reader(name: str | None, email: str = ADDRESS) -> Recipient:
    return Recipient(
        email, name, "en", "https://news.example.org/u/token", "https://news.example.org/p/token"
    )


def received(wire: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(wire)
    assert isinstance(parsed, EmailMessage)
    return parsed


def single_email(settings: dict[str, Any], name: str | None, email: str = ADDRESS) -> bytes:
    """A single email as the outbox builds one, headers from ``standard_headers``."""
    headers = outbox.standard_headers(settings, email, "A notice", name)
    return build_message(headers, "text", "<p>html</p>").as_bytes(policy=SMTP_POLICY)


def issue_email(settings: dict[str, Any], name: str | None, email: str = ADDRESS) -> bytes:
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), settings)
    return issue_message(rendered, reader(name, email), settings).as_bytes(policy=SMTP_POLICY)


def assert_one_recipient(email: EmailMessage, expected_to: str) -> None:
    """The To header reads as expected, names one address, and nothing else was injected."""
    assert str(email["To"]) == expected_to
    assert [address.addr_spec for address in email["To"].addresses] == [ADDRESS]
    assert email["Bcc"] is None and email["Cc"] is None
    assert not email.defects


@pytest.mark.parametrize(("name", "expected_to"), NAMES, ids=NAME_IDS)
def test_a_name_is_cleaned_or_left_out_the_same_way_in_both_kinds_of_email(
    name: str | None, expected_to: str
) -> None:
    """Whatever a stored name holds, single and issue emails are built with the same To."""
    settings = config()
    single, issue = received(single_email(settings, name)), received(issue_email(settings, name))
    assert_one_recipient(single, expected_to)
    assert_one_recipient(issue, expected_to)


@pytest.mark.parametrize(("name", "expected_to"), NAMES, ids=NAME_IDS)
def test_no_name_adds_a_header_line_on_the_wire(name: str | None, expected_to: str) -> None:
    """Every header line of both emails is one the builder wrote; none starts inside a name."""
    settings = config(MAIL_REPLY_TO="editors@example.org")
    for wire in (single_email(settings, name), issue_email(settings, name)):
        head = wire.split(b"\r\n\r\n", 1)[0]
        fields = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in b" \t"]
        assert b"Bcc" not in fields and b"X" not in fields
        assert fields.count(b"To") == 1


def test_a_long_name_is_shortened_in_single_emails_as_in_issue_emails() -> None:
    """A 500-character name gives the greeting's 60 characters in the To of both kinds."""
    settings = config()
    for wire in (single_email(settings, "王" * 500), issue_email(settings, "王" * 500)):
        display = received(wire)["To"].addresses[0].display_name
        # The parser joins adjacent encoded-words with a space; the characters are what count.
        assert display.replace(" ", "") == "王" * 60


def test_an_encoded_word_made_across_name_and_address_leaves_the_name_out() -> None:
    """A name that only hides a line break once the address follows it is still left out."""
    assert recipient_mailbox("=?utf-8?q?=0D=0A", "a?=@example.com") == "a?=@example.com"


@pytest.mark.parametrize("address", ["r@example.com\r\nBcc: v@example.com", "r@example.com\n"])
def test_an_address_that_would_split_the_header_is_refused_in_both(address: str) -> None:
    """The address is where the email goes, so nothing can stand in for it: both refuse it."""
    settings = config()
    with pytest.raises(HeaderInjection) as refused:
        single_email(settings, "Ann", address)
    assert refused.value.header == "To"
    with pytest.raises(HeaderInjection) as refused:
        issue_email(settings, "Ann", address)
    assert refused.value.header == "To"


def test_from_and_reply_to_are_the_same_in_both_kinds_of_email() -> None:
    """The sender's headers come from one place, so both kinds read the same."""
    settings = config(MAIL_FROM_NAME="天堂之芯", MAIL_REPLY_TO="editors@example.org")
    single, issue = received(single_email(settings, "Ann")), received(issue_email(settings, "Ann"))
    for name in ("From", "Reply-To"):
        assert str(single[name]) == str(issue[name]), name
    assert str(single["From"]) == f"天堂之芯 <{settings['MAIL_FROM']}>"
    assert str(single["Reply-To"]) == "editors@example.org"
    assert str(single["Message-ID"]).endswith("@example.org>")
    assert str(issue["Message-ID"]).endswith("@example.org>")


def test_no_reply_to_unless_configured_in_either() -> None:
    """Without MAIL_REPLY_TO neither kind of email carries a Reply-To header."""
    settings = config(MAIL_REPLY_TO="")
    for wire in (single_email(settings, "Ann"), issue_email(settings, "Ann")):
        assert received(wire)["Reply-To"] is None


def test_a_bad_configured_from_name_is_refused_in_both() -> None:
    """MAIL_FROM_NAME is ours, not a reader's: a line break in it is refused, not cleaned."""
    settings = config(MAIL_FROM_NAME="Mag\r\nX-Evil: 1")
    with pytest.raises(HeaderInjection):
        single_email(settings, "Ann")
    with pytest.raises(HeaderInjection):
        issue_email(settings, "Ann")


def test_a_confirmation_to_a_reader_with_a_stored_line_break_is_built(
    app: Flask, db: Session
) -> None:
    """A name stored before names were checked gives a confirmation with the cleaned name."""
    subscriber = Subscriber(
        email=ADDRESS,
        name="Eve\r\nBcc: victim@example.com",
        locale="en",
        confirm_nonce="c" * 32,
        link_nonce="l" * 32,
    )
    db.add(subscriber)
    db.commit()
    message = OutboxMessage(
        kind="confirm", to_address=ADDRESS, locale="en", params={"subscriber_id": subscriber.id}
    )
    with app.app_context():
        built = outbox.BUILDERS["confirm"](db, message, app.config)
    email = received(built.as_bytes(policy=SMTP_POLICY))
    assert_one_recipient(email, f'"Eve Bcc: victim@example.com" <{ADDRESS}>')
    assert emails.recipient(subscriber) == f'"Eve Bcc: victim@example.com" <{ADDRESS}>'
