"""Issue email headers: what a parsed message.eml carries, and injection attempts refused."""

from __future__ import annotations

import re
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.parser import Parser
from email.policy import SMTP as SMTP_POLICY
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from mailer.message import HeaderInjection
from mailer.message import build_message
from mailer.message import check_header
from mailer.message import issue_mail
from mailer.message import issue_message
from mailer.message import mailbox
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

TOKEN = "eyJzIjo0Mn0.Z3x9Qw.k2pVbYdE1fIu6mX8o0cQyT4nHrLsWaJgZvBeMtUiNoP"


def reader(name: str | None = "王小明", email: str = "reader@example.com") -> Recipient:
    return Recipient(
        email,
        name,
        "zh",
        f"https://news.example.org/unsubscribe/{TOKEN}",
        f"https://news.example.org/preferences/{TOKEN}",
    )


def parse(message: EmailMessage) -> EmailMessage:
    """The message as a receiver reads it: its bytes, as the relay sends them, parsed again."""
    return parse_bytes(message.as_bytes(policy=SMTP_POLICY))


def parse_bytes(wire: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(wire)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_parses_into_text_and_html_with_every_header() -> None:
    """From, To, Subject, Date, Message-ID and the list headers are there, and both parts parse."""
    rendered = render_segment(seed(), make_segment(["policy"], "digest", "zh", TOPICS), config())
    email = parse(issue_message(rendered, reader(), config(MAIL_REPLY_TO="editors@example.org")))
    assert email["From"].addresses[0].display_name == "天堂之芯"
    assert email["From"].addresses[0].addr_spec == "newsletter@example.org"
    assert str(email["To"]) == "王小明 <reader@example.com>"
    assert str(email["Subject"]) == "天堂之芯 · 第361期 · 2023年2月"
    assert parsedate_to_datetime(str(email["Date"])).tzinfo is not None
    assert str(email["Message-ID"]).endswith("@example.org>")
    assert str(email["Reply-To"]) == "editors@example.org"
    assert str(email["List-Id"]) == "天堂之芯 <newsletter.example.org>"
    assert str(email["List-Unsubscribe"]) == (
        f"<https://news.example.org/unsubscribe/{TOKEN}>, "
        "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    )
    assert str(email["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    text_part, html_part = email.get_body(("plain",)), email.get_body(("html",))
    assert text_part is not None and html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    assert text.startswith("王小明，您好：") and "2023年国家标准立项指南" in text
    assert "王小明，您好：" in html and html.rstrip().endswith("</html>")
    assert email.get_content_type() == "multipart/alternative"


def test_long_unsubscribe_url_stays_a_plain_url_on_the_wire() -> None:
    """A URL longer than a folded line is not turned into an encoded-word clients cannot follow."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    long_token = "A" * 200
    recipient = Recipient(
        "r@example.com", None, "en", f"https://news.example.org/u/{long_token}", "https://x.test/p"
    )
    wire = issue_message(rendered, recipient, config()).as_bytes(policy=SMTP_POLICY)
    assert f"List-Unsubscribe: <https://news.example.org/u/{long_token}>,\r\n".encode() in wire
    assert b"=?utf-8?q?=3Chttps" not in wire


def test_message_id_can_be_given_by_the_caller() -> None:
    """The send path records a Message-ID before sending and passes it in."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    email = parse(issue_message(rendered, reader(), config(), message_id="<abc@example.org>"))
    assert str(email["Message-ID"]) == "<abc@example.org>"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Eve\r\nBcc: victim@example.com", "Eve Bcc: victim@example.com"),
        ("Eve\nBcc: victim@example.com", "Eve Bcc: victim@example.com"),
        ("Eve\x00", "Eve"),
        ("Eve\rX: y", "Eve X: y"),
    ],
    ids=["crlf", "lf", "nul", "cr"],
)
def test_line_breaks_in_a_recipient_name_are_cleaned_not_refused(name: str, shown: str) -> None:
    """A display name that would start a new header is cleaned: the email is built, nothing injected."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    wire = issue_message(rendered, reader(name=name), config()).as_bytes(policy=SMTP_POLICY)
    email = parse_bytes(wire)
    assert [(a.display_name, a.addr_spec) for a in email["To"].addresses] == [
        (shown, "reader@example.com")
    ]
    assert email["Bcc"] is None and email["X"] is None
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX:" not in head
    assert b"\x00" not in wire and b"\r" not in head.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?Hello=0D=0ABcc=3A_victim=40example=2Ecom?=",
        "=?utf-8?b?SGVsbG8NCkJjYzogdmljdGlt?=",
        "=?utf-8?q?nul=00byte?=",
    ],
    ids=["qp-crlf", "b64-crlf", "qp-nul"],
)
def test_encoded_words_hiding_line_breaks_are_refused(value: str) -> None:
    """CR, LF or NUL smuggled in an RFC 2047 encoded-word is found after decoding (CVE-2024-6923)."""
    with pytest.raises(HeaderInjection) as refused:
        check_header("Subject", value)
    assert refused.value.header == "Subject"
    with pytest.raises(HeaderInjection):
        build_message({"From": "a@example.org", "To": "b@example.org", "Subject": value}, "x")


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example.org/u/x>, <https://evil.example/",
        "https://news.example.org/u/x y",
        "https://news.example.org/u/x\r\nBcc: v@example.com",
    ],
    ids=["bracket", "space", "crlf"],
)
def test_an_unsubscribe_url_that_would_break_the_header_is_refused(url: str) -> None:
    """List-Unsubscribe holds exactly one https URL and one mailto, nothing smuggled in."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    recipient = Recipient("r@example.com", None, "en", url, "https://x.test/p")
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        issue_message(rendered, recipient, config())


def test_a_bad_from_name_in_the_configuration_is_refused() -> None:
    """Even a configured value is checked: a line break in MAIL_FROM_NAME stops the message."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    with pytest.raises(HeaderInjection):
        issue_message(rendered, reader(), config(MAIL_FROM_NAME="Mag\r\nX-Evil: 1"))


def test_build_message_keeps_its_quoted_printable_default() -> None:
    """The outbox's single emails are still quoted-printable; issue emails ask for base64."""
    message = build_message(
        {"From": "a@example.org", "To": "b@example.org", "Subject": "测试"}, "文字", "<p>文字</p>"
    )
    assert "Content-Transfer-Encoding: quoted-printable" in message.as_string()
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    wire = issue_message(rendered, reader(), config()).as_bytes(policy=SMTP_POLICY)
    assert wire.count(b"Content-Transfer-Encoding: base64") == 2


def reference(rendered: Any, recipient: Recipient, settings: dict[str, Any], sent: Any) -> Any:
    """The same email built whole by the email package, as issue emails were built before."""
    personal = rendered.personalise(recipient)
    headers = {
        "From": mailbox(settings["MAIL_FROM_NAME"], settings["MAIL_FROM"]),
        "To": mailbox(recipient.name or "", recipient.email),
        "Subject": rendered.subject,
        "Message-ID": str(sent["Message-ID"]),
        "Reply-To": settings["MAIL_REPLY_TO"],
        "Date": str(sent["Date"]),
    }
    return parse(build_message(headers, personal.text, personal.html, cte="base64"))


@pytest.mark.parametrize("edition", ["full", "digest"])
def test_assembled_message_parses_like_one_built_by_the_email_package(edition: str) -> None:
    """The per-segment skeleton filled per recipient reads back with the same headers and parts."""
    settings = config(MAIL_REPLY_TO="editors@example.org")
    rendered = render_segment(seed(), make_segment(TOPICS, edition, "zh", TOPICS), settings)
    mail = issue_mail(rendered, settings)
    for recipient in (reader(), reader(name=None), reader(name='Li "Ann", <b>&%{x}</b>')):
        sent = parse(mail.message(recipient))
        built = reference(rendered, recipient, settings, sent)
        for name in ("From", "To", "Subject", "Message-ID", "Reply-To", "Date", "MIME-Version"):
            assert str(sent[name]) == str(built[name]), name
        assert sent.get_content_type() == built.get_content_type() == "multipart/alternative"
        sent_parts, built_parts = list(sent.iter_parts()), list(built.iter_parts())
        assert [p.get_content_type() for p in sent_parts] == ["text/plain", "text/html"]
        for mine, theirs in zip(sent_parts, built_parts, strict=True):
            assert mine.get_content_type() == theirs.get_content_type()
            assert mine.get_content_charset() == theirs.get_content_charset() == "utf-8"
            assert mine["Content-Transfer-Encoding"] == theirs["Content-Transfer-Encoding"]
            assert mine.get_payload(decode=True) == theirs.get_payload(decode=True)


def test_the_returned_message_reads_its_own_bytes() -> None:
    """Reading headers or parts of the returned message parses the bytes that are sent."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    message = issue_message(rendered, reader(), config())
    wire = message.as_bytes(policy=SMTP_POLICY)
    assert bytes(message) == wire
    assert str(message["To"]) == "王小明 <reader@example.com>"
    assert message.get_body(("html",)) is not None
    assert message.as_bytes() == wire


def test_every_line_on_the_wire_is_short_crlf_ended_and_seven_bit() -> None:
    """Long Chinese paragraphs without spaces still give lines of at most 76 octets, CRLF only."""
    rendered = render_segment(seed(), make_segment(TOPICS, "full", "zh", TOPICS), config())
    assert max(len(line.encode()) for line in rendered.text.splitlines()) > 998
    wire = issue_message(rendered, reader(), config()).as_bytes(policy=SMTP_POLICY)
    assert wire.endswith(b"\r\n") and b"\n" not in wire.replace(b"\r\n", b"")
    assert b"\r" not in wire.replace(b"\r\n", b"")
    assert wire.isascii()
    head, body = wire.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("Chips Weekly", "List-Id: Chips Weekly <newsletter.example.org>"),
        ('Chips, "Weekly" <x>', 'List-Id: "Chips, \\"Weekly\\" <x>" <newsletter.example.org>'),
        ("=?utf-8?q?Admin?=", 'List-Id: "=?utf-8?q?Admin?=" <newsletter.example.org>'),
    ],
    ids=["atoms", "specials", "encoded-word-lookalike"],
)
def test_list_id_is_encoded_only_when_needed_and_quoted_when_it_must(name: str, line: str) -> None:
    """An ASCII list name stays readable; commas, quotes and brackets are quoted, not exposed."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    wire = issue_message(rendered, reader(), config(MAIL_FROM_NAME=name)).as_bytes()
    assert f"\r\n{line}\r\n".encode() in b"\r\n" + wire
    assert str(parse(issue_message(rendered, reader(), config(MAIL_FROM_NAME=name)))["List-Id"])


def test_a_long_chinese_list_name_is_folded_with_crlf() -> None:
    """A list name longer than a line is folded into encoded-words, never with a bare LF."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    settings = config(MAIL_FROM_NAME="天堂之芯半导体产业月刊" * 6)
    wire = issue_message(rendered, reader(), settings).as_bytes()
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"")
    list_id = re.search(rb"\r\nList-Id: .*?\r\n(?! )", b"\r\n" + head, re.DOTALL)
    assert list_id is not None and list_id.group().count(b"\r\n ") >= 2
    assert max(len(line) for line in list_id.group().split(b"\r\n")) <= 78
    email = parse(issue_message(rendered, reader(), settings))
    assert str(email["List-Id"]) == f"{'天堂之芯半导体产业月刊' * 6} <newsletter.example.org>"


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0b", "\x1e"])
def test_other_line_separators_are_refused_in_the_subject(separator: str) -> None:
    """Characters the email package splits lines on are refused like CR and LF, by header name."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    tampered = replace(rendered, subject=f"Issue{separator}Bcc: victim@example.com")
    with pytest.raises(HeaderInjection) as refused:
        issue_message(tampered, reader(), config())
    assert refused.value.header == "Subject"


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0b", "\t"])
def test_other_control_characters_in_a_reader_name_are_dropped(separator: str) -> None:
    """A stray separator in a stored name does not stop that reader's email; it becomes a space."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    email = parse(issue_message(rendered, reader(name=f"Ann{separator}Lee"), config()))
    assert str(email["To"]) == "Ann Lee <reader@example.com>"
    text = email.get_body(("plain",))
    assert text is not None and text.get_content().startswith("Dear Ann Lee,")


def test_a_very_long_name_is_shortened_in_the_to_header_as_in_the_greeting() -> None:
    """A 500-character name gives a To header no longer than the greeting's 60 characters."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    email = parse(issue_message(rendered, reader(name="王" * 500), config()))
    # The parser joins adjacent encoded-words with a space; the characters are what count.
    assert email["To"].addresses[0].display_name.replace(" ", "") == "王" * 60


def test_a_non_ascii_mailbox_is_written_in_utf8_not_as_an_encoded_word() -> None:
    """RFC 2047 forbids encoded-words in an address; such a To header is UTF-8 (RFC 6532)."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    wire = issue_message(rendered, reader(email="用户@example.com"), config()).as_bytes()
    assert "\r\nTo: 王小明 <用户@example.com>\r\n".encode() in wire
    # Python's bytes parser does not decode UTF-8 headers; a receiver that speaks RFC 6532 does.
    received = Parser(policy=policy.default).parsestr(wire.decode("utf-8"))
    assert received["To"].addresses[0].addr_spec == "用户@example.com"
