"""Issue email headers: what a parsed message.eml carries, and injection attempts refused."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

import pytest

from mailer.message import HeaderInjection
from mailer.message import build_message
from mailer.message import check_header
from mailer.message import issue_message
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from mailer.smtp import SMTP_POLICY
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
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes(policy=SMTP_POLICY))
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
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
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
    "name",
    ["Eve\r\nBcc: victim@example.com", "Eve\nBcc: victim@example.com", "Eve\x00", "Eve\rX: y"],
    ids=["crlf", "lf", "nul", "cr"],
)
def test_line_breaks_in_a_recipient_name_are_refused(name: str) -> None:
    """A display name that would start a new header is refused with the header's name."""
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), config())
    with pytest.raises(HeaderInjection, match="contains a line break or NUL character"):
        issue_message(rendered, reader(name=name), config())


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
