"""Amazon SNS messages: their signature, checked against Amazon's certificate, and confirmations.

SNS signs every message it posts (SignatureVersion 1: RSA with SHA-1, 2: RSA with SHA-256) over a
canonical string of some of its fields; the certificate is fetched from SigningCertURL, which is
believed only over HTTPS from an ``sns.<region>.amazonaws.com`` (or ``.com.cn``) host, used only
when it is issued to sns.amazonaws.com, and kept in memory. A subscription is confirmed by
fetching its SubscribeURL under the same host rule.

Where certificates come from is the process's ``SnsTrust`` (``app.extensions["inbound.sns"]``),
not a setting: an operator has nothing to set and nothing to get wrong, and only code (the tests,
with a local HTTPS server of their own) can point it elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask import current_app

from inbound.webhook_common import Refused

EXTENSION = "inbound.sns"
# Amazon's own hosts; the whole host[:port] part of the URL must match (no port, no user). The
# middle part is a region (us-east-1, us-gov-west-1, cn-north-1), not any label: other Amazon
# services' hosts (sns.s3.amazonaws.com, a bucket named sns) serve what anyone uploads.
REGION = r"[a-z]{2}(?:-gov)?-[a-z]+-\d"
AWS_HOST = re.compile(rf"sns\.{REGION}\.amazonaws\.com(?:\.cn)?")
# The names Amazon's SNS signing certificates are issued to (their subject or SAN):
# sns.amazonaws.com in the older regions, sns-signing.<region>.amazonaws.com in the opt-in ones
# (ap-east-1, me-south-1 …), sns-<region>.amazonaws.com.cn in China, sns-us-gov-west-1… in
# GovCloud (as the AWS SDKs expect them).
SIGNER_NAME = re.compile(
    rf"sns\.amazonaws\.com|sns-signing\.{REGION}\.amazonaws\.com|sns-{REGION}\.amazonaws\.com(?:\.cn)?"
)
# The fields each kind of message signs, in the order the canonical string lists them.
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
CERTIFICATE_LIMIT = 64 * 1024
CACHE_LIMIT = 50


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would lead away from the host the rule accepted: it is refused."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class SnsTrust:
    """Which hosts certificates and confirmations may come from, over which TLS, and the cache."""

    host: re.Pattern[str] = AWS_HOST
    context: ssl.SSLContext | None = None  # None: the system's certificate authorities
    timeout: float = 10.0
    # Each certificate's key and the end of its validity, by URL.
    keys: dict[str, tuple[rsa.RSAPublicKey, datetime]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_url(self, url: str, what: str) -> None:
        """Refuse (403) a URL that is not HTTPS on an accepted host."""
        try:
            parts = urlsplit(url)
        except ValueError:
            raise Refused(400, f"{what} is not a URL.") from None
        if parts.scheme != "https" or not self.host.fullmatch(parts.netloc):
            raise Refused(403, f"{what} is not an HTTPS address of Amazon SNS.")

    def get(self, url: str, what: str, limit: int = CERTIFICATE_LIMIT) -> bytes:
        """GET ``url`` (checked first), at most ``limit`` bytes, with no redirects."""
        self.check_url(url, what)
        context = self.context or ssl.create_default_context()
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirects()
        )
        try:
            with opener.open(url, timeout=self.timeout) as response:
                return bytes(response.read(limit + 1))[: limit + 1]
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise Refused(502, f"{what} could not be fetched ({type(error).__name__}).") from None

    def public_key(self, url: str) -> rsa.RSAPublicKey:
        """The RSA key of the certificate at ``url``, fetched once per process while valid."""
        with self.lock:
            cached = self.keys.get(url)
        if cached is not None and datetime.now(UTC) <= cached[1]:
            return cached[0]
        pem = self.get(url, "SigningCertURL")
        key, until = _certificate_key(pem)
        with self.lock:
            if len(self.keys) >= CACHE_LIMIT:
                self.keys.clear()
            self.keys[url] = (key, until)
        return key


def init_app(app: Flask) -> None:
    app.extensions.setdefault(EXTENSION, SnsTrust())


def trust() -> SnsTrust:
    found: SnsTrust = current_app.extensions[EXTENSION]
    return found


def _certificate_key(pem: bytes) -> tuple[rsa.RSAPublicKey, datetime]:
    """The certificate's RSA key and its end of validity; refused unless a PEM valid now."""
    if len(pem) > CERTIFICATE_LIMIT:
        raise Refused(403, "The signing certificate is too large.")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise Refused(403, "The signing certificate cannot be read.") from None
    if not any(SIGNER_NAME.fullmatch(name) for name in _names(certificate)):
        raise Refused(403, "The signing certificate is not issued to Amazon SNS.")
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Refused(403, "The signing certificate is not valid now.")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused(403, "The signing certificate has no RSA key.")
    return key, certificate.not_valid_after_utc


def _names(certificate: x509.Certificate) -> set[str]:
    """The certificate's subject common names and DNS alternative names, in lower case."""
    names = {
        str(attribute.value).lower()
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    }
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return names
    return names | {name.lower() for name in extension.value.get_values_for_type(x509.DNSName)}


def canonical(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: each present field's name and value, one a line, in AWS's order."""
    names = NOTIFICATION_FIELDS if message["Type"] == "Notification" else SUBSCRIPTION_FIELDS
    lines: list[str] = []
    for name in names:
        if name in message:
            lines += [name, message[name]]
    return ("\n".join(lines) + "\n").encode("utf-8")


def check_shape(message: Any) -> dict[str, Any]:
    """The message as a dict of text fields with those its type needs; else 400."""
    if not isinstance(message, dict) or message.get("Type") not in TYPES:
        raise Refused(400, "Not an SNS message.")
    names = NOTIFICATION_FIELDS if message["Type"] == "Notification" else SUBSCRIPTION_FIELDS
    needed = [n for n in names if n != "Subject"] + [
        "Signature",
        "SignatureVersion",
        "SigningCertURL",
    ]
    for name in needed:
        if not isinstance(message.get(name), str) or not message[name]:
            raise Refused(400, f"The SNS message has no {name}.")
    if "Subject" in message and message["Subject"] is None:
        # A null Subject is no Subject: the canonical string leaves it out.
        del message["Subject"]
    if "Subject" in message and not isinstance(message["Subject"], str):
        raise Refused(400, "The SNS message's Subject is not text.")
    return message


def verify(message: Mapping[str, Any]) -> None:
    """Refuse (401) a message whose signature is not Amazon's over its canonical string."""
    algorithm = HASHES.get(message["SignatureVersion"])
    if algorithm is None:
        raise Refused(401, "Unknown SNS SignatureVersion.")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise Refused(401, "The SNS signature is not base64.") from None
    key = trust().public_key(message["SigningCertURL"])
    try:
        key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Refused(401, "The SNS signature does not match.") from None


def confirm(message: Mapping[str, Any]) -> None:
    """Confirm a subscription by fetching its SubscribeURL (only from an Amazon SNS host)."""
    trust().get(message["SubscribeURL"], "SubscribeURL", limit=16 * 1024)
