"""DKIM: an issue email signed with a key made for the test verifies with dkimpy, also after
passing through a real SMTP peer; tampering breaks it; unusable settings are named."""

from __future__ import annotations

import base64
import re
import time
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.dkim import DkimError
from mailer.message import issue_message
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from mailer.smtp import Relay
from tests.conftest import SmtpSink
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

SELECTOR, DOMAIN = "news2024", "example.org"
COVERED = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
}


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key file, and the DNS TXT record that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "private.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def signing_config(key_path: Path) -> dict[str, Any]:
    return config(DKIM_DOMAIN=DOMAIN, DKIM_SELECTOR=SELECTOR, DKIM_PRIVATE_KEY_PATH=str(key_path))


def dns(record: bytes) -> Any:
    """A resolver that answers only our selector's name, as DNS would."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def signed_bytes(settings: dict[str, Any], name: str = "王小明") -> bytes:
    rendered = render_segment(seed(), make_segment(["policy"], "full", "zh", TOPICS), settings)
    recipient = Recipient(
        "reader@example.com",
        name,
        "zh",
        "https://news.example.org/unsubscribe/" + "t" * 90,
        "https://news.example.org/preferences/t",
    )
    return issue_message(rendered, recipient, settings).as_bytes(policy=SMTP_POLICY)


def test_signature_verifies_and_covers_the_list_headers(key_pair: tuple[Path, bytes]) -> None:
    """The DKIM-Signature verifies against the published key and signs the RFC 8058 headers."""
    path, record = key_pair
    wire = signed_bytes(signing_config(path))
    assert wire.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;")
    assert dkim.verify(wire, dnsfunc=dns(record))
    header = wire.split(b"\r\n\r\n", 1)[0].decode()
    signed = re.search(r"h=([^;]+);", re.sub(r"\r\n\s+", " ", header))
    assert signed is not None
    assert {name.strip() for name in signed.group(1).split(":")} >= COVERED


def test_tampering_with_an_unsubscribe_link_breaks_the_signature(
    key_pair: tuple[Path, bytes],
) -> None:
    """A relay or attacker changing the one-click URL makes verification fail."""
    path, record = key_pair
    wire = signed_bytes(signing_config(path))
    forged = wire.replace(b"/unsubscribe/tttt", b"/unsubscribe/evil", 1)
    assert forged != wire
    assert not dkim.verify(forged, dnsfunc=dns(record))


def test_signature_survives_the_smtp_relay(
    key_pair: tuple[Path, bytes], smtp_sink: SmtpSink
) -> None:
    """Sent over SMTP to a real peer, the received bytes still verify (nothing was refolded)."""
    path, record = key_pair
    settings = signing_config(path)
    settings.update(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, SMTP_TIMEOUT=10)
    rendered = render_segment(seed(), make_segment(["data"], "digest", "en", TOPICS), settings)
    recipient = Recipient(
        "reader@example.com",
        None,
        "en",
        "https://news.example.org/u/" + "x" * 120,
        "https://x.test/p",
    )
    with Relay(settings) as relay:
        relay.send(
            issue_message(rendered, recipient, settings), "newsletter@example.org", recipient.email
        )
    [(_, _, received)] = smtp_sink.messages
    assert dkim.verify(received, dnsfunc=dns(record))


def test_without_a_key_nothing_is_signed() -> None:
    """Signing is off unless both the domain and the key file are configured."""
    assert b"DKIM-Signature" not in signed_bytes(config(DKIM_DOMAIN=DOMAIN))


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    """A key path that does not exist stops the message with the setting's name."""
    with pytest.raises(DkimError, match=r"NEWSLETTER_DKIM_PRIVATE_KEY_PATH names .*missing\.pem"):
        signed_bytes(signing_config(tmp_path / "missing.pem"))


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    """A key file holding something else is refused in a sentence, not a stack trace."""
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a key\n")
    with pytest.raises(DkimError, match="cannot sign"):
        signed_bytes(signing_config(bogus))


def test_signature_survives_refolding_and_uses_no_body_length(
    key_pair: tuple[Path, bytes],
) -> None:
    """A relay that unfolds or refolds headers does not break it, and no l= tag lets a tail in."""
    path, record = key_pair
    wire = signed_bytes(signing_config(path))
    head, body = wire.split(b"\r\n\r\n", 1)
    signature = re.sub(rb"\r\n\s+", b" ", head.split(b"\r\nList-Id:", 1)[0])
    assert b" l=" not in signature and b";l=" not in signature
    unfolded = head.replace(b">,\r\n <mailto:", b">, <mailto:")
    refolded = unfolded.replace(b"Subject: ", b"Subject:\r\n\t ", 1)
    assert refolded != head
    assert dkim.verify(refolded + b"\r\n\r\n" + body, dnsfunc=dns(record))


def test_single_emails_from_the_outbox_are_signed_too(
    key_pair: tuple[Path, bytes], app: Any, db: Any, smtp_sink: SmtpSink
) -> None:
    """With DKIM configured, a test email sent through the outbox arrives signed and verifies."""
    from core import db as core_db
    from mailer import outbox

    path, record = key_pair
    app.config.update(DKIM_DOMAIN=DOMAIN, DKIM_SELECTOR=SELECTOR, DKIM_PRIVATE_KEY_PATH=str(path))
    with app.app_context():
        session = core_db.session()
        row = outbox.queue(session, "test", "reader@example.com", "zh", lambda _id: None)
        session.commit()
        claimed = outbox.claim(session, row.id)
        assert claimed is not None
        assert outbox.deliver(session, claimed, app.config).status == "sent"
    [(_, _, received)] = smtp_sink.messages
    assert received.startswith(b"DKIM-Signature:")
    assert dkim.verify(received, dnsfunc=dns(record))


def test_an_unreadable_dkim_key_stops_start_up(app: Any) -> None:
    """A configured DKIM key that cannot be read stops start-up with a sentence naming the setting."""
    from core.checks import check_services
    from core.config import ConfigError

    app.config.update(DKIM_DOMAIN=DOMAIN, DKIM_PRIVATE_KEY_PATH="/nonexistent/dkim.pem")
    with pytest.raises(ConfigError, match="NEWSLETTER_DKIM_PRIVATE_KEY_PATH"):
        check_services(app)


BODIES = [
    b"plain body\r\n",
    b"",
    b"\r\n\r\n\r\n",
    b"no final line break",
    b"trailing spaces   \r\nand\ttabs\t\there\r\n\r\n\r\n",
    b"  leading and  inner  runs \r\n \r\n\t\r\n",
    b"QUJD" * 19 + b"\r\n" + b"=\r\n",
    # Many single spaces (past the quick look), then a run only at the very end.
    b"word " * 70 + b"end  \r\n",
    b"a b\r\n" * 100,
    b"ends with a space ",
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_the_signature_is_dkimpys_byte_for_byte(key_pair: tuple[Path, bytes], body: bytes) -> None:
    """Our fast signer writes exactly the header dkimpy writes for the same message and second:
    same canonical body hash, same header selection and folding, same RSA signature."""
    path, record = key_pair
    from mailer import dkim as ours

    issue = signed_bytes(config())
    head = issue.split(b"\r\n\r\n", 1)[0] + b"\r\nX-Extra:  folded\r\n\tvalue  \r\n"
    for payload in (issue, head + b"\r\n" + body):
        theirs, mine = _same_second(payload, path)
        assert mine == theirs
        assert dkim.verify(mine + payload, dnsfunc=dns(record))
    assert ours.relaxed_body(b"") == b""


def _same_second(payload: bytes, path: Path) -> tuple[bytes, bytes]:
    """dkimpy's signature and ours, made within one second (so with the same t= tag)."""
    from mailer import dkim as ours

    key = ours.signing_key(str(path))
    while True:
        second = int(time.time())
        theirs = dkim.sign(
            payload,
            SELECTOR.encode(),
            DOMAIN.encode(),
            path.read_bytes(),
            include_headers=list(ours.SIGNED_HEADERS),
            canonicalize=(b"relaxed", b"relaxed"),
        )
        mine = ours.signature(payload, key, SELECTOR.encode(), DOMAIN.encode(), second)
        if int(time.time()) == second:
            return theirs, mine


def test_a_key_that_is_not_rsa_is_refused_in_a_sentence(tmp_path: Path) -> None:
    """An elliptic-curve key cannot make an rsa-sha256 signature: said, not a stack trace."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(DkimError, match="must be an RSA key"):
        signed_bytes(signing_config(path))
