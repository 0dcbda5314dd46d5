"""Amazon SES through SNS: the SNS signature checked against a certificate fetched over HTTPS
from an accepted host, subscriptions confirmed, bounces and complaints applied once.

Tests cannot reach AWS, so a local HTTPS server of the test's own plays Amazon's certificate and
confirmation host: the test's certificate authority is the only one trusted, and the host rule is
set to that server's address on the app's ``SnsTrust`` (code only; no setting can do it).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from inbound import sns
from inbound.webhook_common import Refused
from tests.webhook_helpers import address_of
from tests.webhook_helpers import effects
from tests.webhook_helpers import sent_campaign
from tests.webhook_helpers import snapshot
from tests.webhook_helpers import statuses

TOPIC = "arn:aws:sns:us-east-1:123456789012:newsletter-ses"
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"
# The address a forward delivered to: no reader has it, so only our Message-ID finds one.
ALIAS = "forwarded-alias@elsewhere.example"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None = None,
    ip: str | None = None,
    days: float = 30,
) -> x509.Certificate:
    now = datetime.now(UTC)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeAws:
    """A local HTTPS server standing in for sns.<region>.amazonaws.com, and the signing key."""

    base: str
    trust: sns.SnsTrust
    signing_key: rsa.RSAPrivateKey
    paths: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def sign(
        self, message: dict[str, Any], version: str = "2", url: str | None = None
    ) -> dict[str, Any]:
        """``message`` with SignatureVersion, SigningCertURL and a valid Signature."""
        cert_url = url or self.base + CERT_PATH
        signed = {**message, "SignatureVersion": version, "SigningCertURL": cert_url}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
        signature = self.signing_key.sign(sns.canonical(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


@pytest.fixture(scope="module")
def fake_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAws]:
    """The HTTPS server, its certificate signed by a test authority, serving the SNS cert."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate("Test Root CA", ca_key)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_cert = _certificate("127.0.0.1", server_key, ("Test Root CA", ca_key), ip="127.0.0.1")
    folder: Path = tmp_path_factory.mktemp("fake-aws")
    (folder / "server.pem").write_bytes(_pem(server_cert))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_cert = _certificate("sns.amazonaws.com", signing_key, ("Test Root CA", ca_key))
    paths: list[str] = []
    expired = _certificate("sns.amazonaws.com", signing_key, ("Test Root CA", ca_key), days=-0.5)
    files = {CERT_PATH: _pem(signing_cert), "/expired.pem": _pem(expired)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            if self.path == "/redirect.pem":
                self.send_response(302)
                self.send_header("Location", CERT_PATH)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = files.get(self.path.split("?", 1)[0], b"<ConfirmSubscriptionResponse/>")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    client_context = ssl.create_default_context(cadata=_pem(ca).decode())
    trust = sns.SnsTrust(host=re.compile(rf"127\.0\.0\.1:{port}"), context=client_context)
    yield FakeAws(f"https://127.0.0.1:{port}", trust, signing_key, paths, files)
    server.shutdown()
    server.server_close()


@pytest.fixture
def ses(app: Flask, fake_aws: FakeAws) -> FakeAws:
    """The app with SES on for TOPIC, trusting only the fake AWS host, with an empty cache."""
    app.config["SES_TOPIC_ARNS"] = [TOPIC]
    app.extensions[sns.EXTENSION] = sns.SnsTrust(
        host=fake_aws.trust.host, context=fake_aws.trust.context
    )
    fake_aws.paths.clear()
    return fake_aws


def _notification(message_id: str, ses_event: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-12-01T08:05:00.000Z",
    }


def _bounce(
    bounce_type: str, recipients: list[dict[str, Any]], our_id: str | None
) -> dict[str, Any]:
    """An SES bounce notification as AWS documents it (notification contents, "Bounce")."""
    mail: dict[str, Any] = {
        "timestamp": "2026-12-01T08:00:00.000Z",
        "source": "newsletter@newsletter.test",
        "messageId": "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        "destination": [r["emailAddress"] for r in recipients],
        "headersTruncated": False,
        "headers": [{"name": "Message-ID", "value": our_id}] if our_id else [],
        "commonHeaders": {"from": ["newsletter@newsletter.test"], "subject": "芯月刊"},
    }
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": recipients,
            "timestamp": "2026-12-01T08:01:00.000Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": mail,
    }


def _post(client: FlaskClient, message: dict[str, Any] | bytes) -> tuple[int, str]:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    response = client.post(
        "/webhooks/ses",
        data=body,
        headers={"x-amz-sns-message-type": "Notification"},
        content_type="text/plain; charset=UTF-8",
    )
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_bounce_marks_its_delivery_and_reader(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws, version: str
) -> None:
    """A signed permanent bounce (SignatureVersion 1 and 2) quoting our Message-ID (in the
    original headers, in commonHeaders) for an address we do not know (a forward): the
    Message-ID finds the delivery, which bounced, its reader bounced and suppressed, the
    certificate fetched once over HTTPS."""
    first, second, *_ = sent_campaign(app, db)
    recipient = {
        "emailAddress": ALIAS,
        "action": "failed",
        "status": "5.1.1",
        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
    }
    event = _bounce("Permanent", [recipient], first.message_id)
    if version == "2":
        # Quoted in commonHeaders rather than in the original headers.
        event["mail"]["headers"] = []
        event["mail"]["commonHeaders"]["messageId"] = first.message_id
    message = ses.sign(_notification("sns-1", event), version)
    status, said = _post(client, message)
    assert (status, said) == (200, "1 event(s) recorded.\n")
    assert effects(db) == [("ses", "hard_bounce", "suppressed")]
    db.refresh(first)
    db.refresh(second)
    assert (first.status, second.status) == ("bounced", "sent")
    assert statuses(db)[address_of(db, first)] == "bounced"
    assert ses.paths == [CERT_PATH]


def test_transient_bounce_counts_and_complaint_suppresses(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """A transient bounce is only counted; a complaint (found by the address alone, no headers
    kept) marks the reader complained; Delivery notifications change nothing."""
    first, second, third, *_ = sent_campaign(app, db)
    soft = _bounce(
        "Transient",
        [{"emailAddress": address_of(db, first), "diagnosticCode": "452 4.2.2 mailbox full"}],
        None,
    )
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "Mozilla/5.0",
            "complainedRecipients": [{"emailAddress": address_of(db, second)}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-01T09:00:00.000Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": {"timestamp": "2026-12-01T08:00:00.000Z", "messageId": "x", "destination": []},
    }
    delivered = {
        "notificationType": "Delivery",
        "mail": {"destination": [address_of(db, third)]},
        "delivery": {"recipients": [address_of(db, third)]},
    }
    for index, event in enumerate([soft, complaint, delivered]):
        assert _post(client, ses.sign(_notification(f"sns-{index}", event)))[0] == 200
    assert effects(db) == [
        ("ses", "soft_bounce", "soft_counted"),
        ("ses", "complaint", "suppressed"),
    ]
    found = statuses(db)
    assert (
        found[address_of(db, first)],
        found[address_of(db, second)],
        found[address_of(db, third)],
    ) == ("active", "complained", "active")
    assert ses.paths == [CERT_PATH], "the certificate is cached"


def test_same_message_twice_counts_once(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """SNS delivering one MessageId again (a retry or a replay): 409, nothing changed."""
    first, *_ = sent_campaign(app, db)
    message = ses.sign(
        _notification(
            "sns-once", _bounce("Permanent", [{"emailAddress": address_of(db, first)}], None)
        )
    )
    assert _post(client, message)[0] == 200
    before = snapshot(db)
    status, said = _post(client, message)
    assert status == 409 and "nothing was changed" in said
    assert snapshot(db) == before
    assert len(effects(db)) == 1


def _tampered(
    ses: FakeAws, message: dict[str, Any]
) -> list[tuple[str, dict[str, Any] | bytes, int]]:
    signed = ses.sign(message)
    other_topic = ses.sign({**message, "TopicArn": "arn:aws:sns:us-east-1:999999999999:theirs"})
    changed = copy.deepcopy(signed)
    changed["Message"] = changed["Message"].replace("Transient", "Permanent")
    return [
        ("message changed after signing", changed, 401),
        (
            "signature of another key",
            {**signed, "Signature": base64.b64encode(b"x" * 256).decode()},
            401,
        ),
        ("signature not base64", {**signed, "Signature": "%%%"}, 401),
        ("unknown signature version", {**signed, "SignatureVersion": "3"}, 401),
        (
            "certificate on plain http",
            {**signed, "SigningCertURL": signed["SigningCertURL"].replace("https", "http")},
            403,
        ),
        (
            "certificate from another host",
            {**signed, "SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/c.pem"},
            403,
        ),
        (
            "certificate URL with a user part",
            {**signed, "SigningCertURL": "https://sns.us-east-1.amazonaws.com@evil.example/c.pem"},
            403,
        ),
        ("a topic not allowed", other_topic, 403),
        ("an expired certificate", ses.sign(message, url=ses.base + "/expired.pem"), 403),
        ("a certificate behind a redirect", ses.sign(message, url=ses.base + "/redirect.pem"), 502),
        ("no signature", {k: v for k, v in signed.items() if k != "Signature"}, 400),
        ("not JSON", b'{"Type": "Notification", ', 400),
        ("not an SNS message", {"hello": "world"}, 400),
    ]


def test_bad_signatures_and_malformed_bodies_change_nothing(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """Tampered, unsigned, foreign-topic and malformed requests get 4xx and write nothing."""
    first, *_ = sent_campaign(app, db)
    message = _notification(
        "sns-bad", _bounce("Transient", [{"emailAddress": address_of(db, first)}], None)
    )
    before = snapshot(db)
    for what, body, expected in _tampered(ses, message):
        status, said = _post(client, body)
        assert status == expected, (what, said)
        assert said.endswith(".\n") and "Traceback" not in said, what
    signed = ses.sign(
        {
            **message,
            "Message": json.dumps(
                {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}
            ),
        }
    )
    assert _post(client, signed)[0] == 400, "a signed bounce naming no recipient"
    assert snapshot(db) == before
    assert ses.paths.count(CERT_PATH) == 1, "the redirect was not followed"


def test_subscription_is_confirmed_only_for_an_allowed_topic(
    app: Flask, client: FlaskClient, ses: FakeAws
) -> None:
    """A signed SubscriptionConfirmation for our topic fetches its SubscribeURL; one for another
    topic, or whose SubscribeURL is not on the SNS host, fetches nothing."""
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": ses.base + "/?Action=ConfirmSubscription&TopicArn=x&Token=2336412f",
        "Timestamp": "2026-12-01T08:00:00.000Z",
    }
    elsewhere = {**confirmation, "SubscribeURL": "https://example.org/?Action=ConfirmSubscription"}
    assert _post(client, ses.sign(elsewhere))[0] == 403
    assert _post(client, ses.sign({**confirmation, "TopicArn": TOPIC + "-other"}))[0] == 403
    assert ses.paths == [CERT_PATH]
    assert _post(client, ses.sign(confirmation)) == (200, "0 event(s) recorded.\n")
    assert ses.paths == [CERT_PATH, "/?Action=ConfirmSubscription&TopicArn=x&Token=2336412f"]


def test_aws_host_rule() -> None:
    """The default rule accepts only https://sns.<region>.amazonaws.com(.cn)/…"""
    trust = sns.SnsTrust()
    for url in [
        "https://sns.us-east-1.amazonaws.com/a.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/a.pem",
        "https://sns.us-gov-west-1.amazonaws.com/a.pem",
    ]:
        trust.check_url(url, "SigningCertURL")
    for url in [
        "http://sns.us-east-1.amazonaws.com/a.pem",
        "https://sns.us-east-1.amazonaws.com:8443/a.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/a.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/a.pem",
        "https://x@sns.us-east-1.amazonaws.com/a.pem",
        "https://s3.amazonaws.com/a.pem",
        # Other Amazon services' hosts, and buckets, are not regions of SNS (review of issue 11).
        "https://sns.s3.amazonaws.com/a.pem",
        "https://sns.evil-bucket.amazonaws.com/a.pem",
        "https://sns.us-east-1.s3.amazonaws.com/a.pem",
    ]:
        with pytest.raises(Refused):
            trust.check_url(url, "SigningCertURL")


def test_a_certificate_not_issued_to_sns_is_not_used(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """A message signed with the key of a certificate issued to another name (whatever host
    served it) is refused and changes nothing; its key is not kept (review of issue 11)."""
    first, *_ = sent_campaign(app, db)
    recipient = {"emailAddress": address_of(db, first)}
    message = _notification("sns-other-name", _bounce("Permanent", [recipient], None))
    before = snapshot(db)
    for name in (
        "s3.amazonaws.com",
        "sns.amazonaws.com.evil.example",
        "sns-signing.evil.example",
        "sns-cn-north-1.amazonaws.com.cn.evil.example",
        "sns.s3.amazonaws.com",
    ):
        path = f"/{name}.pem"
        ses.files[path] = _pem(_certificate(name, ses.signing_key))
        try:
            status, said = _post(client, ses.sign(message, url=ses.base + path))
        finally:
            del ses.files[path]
        assert (status, said) == (
            403,
            "The signing certificate is not issued to Amazon SNS.\n",
        )
    assert snapshot(db) == before
    trust: sns.SnsTrust = app.extensions[sns.EXTENSION]
    assert trust.keys == {}


@pytest.mark.parametrize(
    "name",
    [
        "sns.amazonaws.com",
        "sns-cn-north-1.amazonaws.com.cn",
        "sns-cn-northwest-1.amazonaws.com.cn",
        "sns-us-gov-west-1.amazonaws.com",
        "sns-signing.ap-east-1.amazonaws.com",
        "sns-signing.me-south-1.amazonaws.com",
    ],
)
def test_the_signing_certificates_of_every_kind_of_region_are_used(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws, name: str
) -> None:
    """Amazon issues SNS signing certificates to other names in China, GovCloud and the opt-in
    regions (as the AWS SDKs expect them): a message signed with such a certificate's key is
    applied (review of issue 11: only sns.amazonaws.com was taken, and a Chinese publisher's
    SES notifications from cn-north-1 were all refused)."""
    first, *_ = sent_campaign(app, db)
    recipient = {"emailAddress": address_of(db, first)}
    message = _notification(f"sns-{name}", _bounce("Permanent", [recipient], None))
    path = f"/{name}.pem"
    ses.files[path] = _pem(_certificate(name, ses.signing_key))
    try:
        status, said = _post(client, ses.sign(message, url=ses.base + path))
    finally:
        del ses.files[path]
    assert (status, said) == (200, "1 event(s) recorded.\n")
    assert statuses(db)[address_of(db, first)] == "bounced"


def test_off_without_topics(app: Flask, client: FlaskClient) -> None:
    """With no SES_TOPIC_ARNS the endpoint does not exist (404), signed or not."""
    assert client.post("/webhooks/ses", data=b"{}").status_code == 404
    assert client.post("/webhooks/unknown", data=b"{}").status_code == 404


def test_a_cached_certificate_is_fetched_again_after_it_expires(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """A certificate kept in memory past its end of validity is not used: it is fetched anew."""
    first, *_ = sent_campaign(app, db)
    stale = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    trust: sns.SnsTrust = app.extensions[sns.EXTENSION]
    trust.keys[ses.base + CERT_PATH] = (stale, datetime.now(UTC) - timedelta(minutes=1))
    recipient = {"emailAddress": address_of(db, first)}
    message = ses.sign(_notification("sns-late", _bounce("Permanent", [recipient], None)))
    assert _post(client, message) == (200, "1 event(s) recorded.\n")
    assert ses.paths == [CERT_PATH]


def test_a_signed_message_holding_nul_verifies_and_is_stored_without_it(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """SNS signs field values as sent, NUL characters included: the signature is checked on
    them, and the event is stored without them (PostgreSQL refuses NUL in text)."""
    first, *_ = sent_campaign(app, db)
    recipient = {"emailAddress": address_of(db, first), "diagnosticCode": "smtp; 550\x00 gone"}
    notification = _notification("sns-nul", _bounce("Permanent", [recipient], None))
    message = ses.sign({**notification, "Subject": "Amazon SES\x00 bounce"})
    assert _post(client, message) == (200, "1 event(s) recorded.\n")
    assert effects(db) == [("ses", "hard_bounce", "suppressed")]


def test_a_null_subject_is_no_subject(
    app: Flask, db: Session, client: FlaskClient, ses: FakeAws
) -> None:
    """ "Subject": null is read as no Subject, as AWS's own PHP validator does (isset), so the
    message verifies instead of being refused as malformed."""
    first, *_ = sent_campaign(app, db)
    event = _bounce("Permanent", [{"emailAddress": address_of(db, first)}], None)
    message = {**ses.sign(_notification("sns-null-subject", event)), "Subject": None}
    assert _post(client, message) == (200, "1 event(s) recorded.\n")
