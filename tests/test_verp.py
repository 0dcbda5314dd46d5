"""VERP return paths and per-reader unsubscribe mailtos (mailer.verp): a real campaign through
the sink sends each delivery from its own return path and each reader their own mailto, both
decoding back to them; forged or altered tokens decode to nothing; with VERP off, MAIL_FROM."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import dkim
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Delivery
from core.config import ConfigError
from core.config import check
from inbound.events import MailEvent
from inbound.events import record
from issues import store
from issues.models import Issue
from mailer import verp
from mailer.message import issue_message
from mailer.render import render_segment
from mailer.segments import Recipient
from mailer.segments import make_segment
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import kill_worker
from tests.campaign_helpers import ledger
from tests.campaign_helpers import on_own_broker
from tests.campaign_helpers import ready_seed
from tests.campaign_helpers import send_now
from tests.campaign_helpers import start_worker
from tests.campaign_helpers import wait_for_status
from tests.conftest import SmtpSink
from tests.helpers import SEED
from tests.test_dkim import dns
from tests.test_dkim import key_pair  # noqa: F401 (a fixture)
from tests.test_dkim import signing_config
from tests.test_segments import TOPICS
from tests.test_segments import config as segment_config
from tests.test_segments import seed

MAILTO = re.compile(r"<mailto:([^?>]+)\?subject=unsubscribe>")
SETTINGS = {
    "SECRET_KEY": "k" * 40,
    "MAIL_FROM": "newsletter@news.example.org",
    "VERP_ENABLED": True,
    "BOUNCE_DOMAIN": None,
    "BOUNCE_LOCAL_PART": "bounces",
    "UNSUBSCRIBE_MAILTO": "unsubscribe@news.example.org",
}


@pytest.fixture
def verp_app(settings: dict[str, Any], app: Flask) -> Iterator[tuple[Flask, dict[str, Any]]]:
    """An app and settings with VERP on, on a Redis database of their own, so that only this
    test's worker (not the session's, which has VERP off) takes its tasks."""
    with on_own_broker(settings, 11, VERP_ENABLED=True) as own:
        yield own


def test_a_campaign_sends_each_delivery_from_its_own_return_path(
    verp_app: tuple[Flask, dict[str, Any]], db: Session, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """60 readers through a real worker and the sink, VERP on: each envelope sender is
    bounces+TOKEN@ the MAIL_FROM domain and decodes to that message's own delivery, and each
    List-Unsubscribe mailto decodes to that reader; the relay was still pipelined. Bounces to
    three of those return paths keep those three out of the next issue's send."""
    app, settings = verp_app
    issue = ready_seed(app, db)
    add_readers(db, 60, app.config)
    worker = start_worker(settings, tmp_path / "worker.log", beat=False)
    try:
        campaign_id = send_now(app, db, issue.id)
        wait_for_status(db, campaign_id, "done")
        assert ledger(db, campaign_id) == {"sent": 60}
        _check_return_paths(app, db, smtp_sink)
        bounced = _bounce_three(app, db, smtp_sink)
        # The next issue goes to everyone but the three whose return paths bounced.
        smtp_sink.reset()
        campaign_id = send_now(app, db, _next_issue(app, db).id)
        wait_for_status(db, campaign_id, "done")
    finally:
        kill_worker(worker)
    assert ledger(db, campaign_id) == {"sent": 57}
    with smtp_sink.lock:
        again = {rcpts[0].lower() for _, rcpts, _ in smtp_sink.messages}
    assert len(again) == 57 and not again & bounced


def _check_return_paths(app: Flask, db: Session, smtp_sink: SmtpSink) -> None:
    rows = db.execute(select(Delivery.id, Delivery.subscriber_id, Delivery.message_id)).all()
    by_message_id = {message_id: (delivery, reader) for delivery, reader, message_id in rows}
    with smtp_sink.lock:
        received = list(smtp_sink.messages)
        pipelined = smtp_sink.pipelined
    assert len(received) == 60 and pipelined == 60
    senders = set()
    for sender, _, content in received:
        message = BytesParser(policy=policy.default).parsebytes(content)
        delivery_id, reader_id = by_message_id[str(message["Message-ID"])]
        assert re.fullmatch(r"bounces\+\d+-[a-z2-7]{16}@newsletter\.test", sender)
        assert verp.delivery_of(app.config, sender) == delivery_id
        mailto = MAILTO.search(str(message["List-Unsubscribe"]))
        assert mailto is not None and mailto.group(1).startswith("unsubscribe+")
        assert verp.subscriber_of_mailto(app.config, mailto.group(1)) == reader_id
        senders.add(sender)
    assert len(senders) == 60


def _bounce_three(app: Flask, db: Session, smtp_sink: SmtpSink) -> set[str]:
    """Permanent bounces come back to the return paths of three messages; their addresses."""
    with smtp_sink.lock:
        chosen = [(sender, rcpts[0].lower()) for sender, rcpts, _ in smtp_sink.messages[:3]]
    for sender, _ in chosen:
        event = MailEvent(
            kind="hard_bounce",
            source="dsn",
            key=f"bounce-of-{sender}",
            occurred_at=datetime.now(UTC),
            reason="550 5.1.1 user unknown",
            delivery_id=verp.delivery_of(app.config, sender),
        )
        assert record(db, app.config, event).effect == "suppressed"
    db.commit()
    return {address for _, address in chosen}


def _next_issue(app: Flask, db: Session) -> Issue:
    parsed = dataclasses.replace(
        store.parse(SEED.read_bytes(), "seed.txt", app.config), number=362, content_hash="2" * 64
    )
    issue = store.store_issue(db, parsed).issue
    db.commit()
    ready = store.set_status(db, issue.id, "ready")
    db.commit()
    return ready


def test_with_verp_off_campaigns_are_sent_from_mail_from(
    app: Flask, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """VERP off (the default): every envelope sender is MAIL_FROM, and the mailto still
    carries each reader's token."""
    assert app.config["VERP_ENABLED"] is False
    issue = ready_seed(app, db)
    readers = add_readers(db, 10, app.config)
    wait_for_status(db, send_now(app, db, issue.id), "done")
    with smtp_sink.lock:
        received = list(smtp_sink.messages)
    assert {sender for sender, _, _ in received} == {app.config["MAIL_FROM"]}
    ids = {
        verp.subscriber_of_mailto(app.config, MAILTO.findall(content.decode())[0])
        for _, _, content in received
    }
    assert ids == {reader.id for reader in readers}


def test_return_paths_decode_only_when_genuine() -> None:
    """A return path decodes to its delivery in any letter case; an altered id or tag, another
    key, another domain or local part, a mailto token and junk decode to None."""
    path = verp.return_path(SETTINGS, 4711)
    assert path.startswith("bounces+4711-") and path.endswith("@news.example.org")
    assert verp.delivery_of(SETTINGS, path) == 4711
    assert verp.delivery_of(SETTINGS, f"<{path.upper()}>") == 4711
    local, domain = path.split("@")
    tag = local.rsplit("-", 1)[1]
    flipped = tag[:-1] + ("a" if tag[-1] != "a" else "b")
    mailto = verp.unsubscribe_address(SETTINGS, 4711)
    for forged in [
        path.replace("4711-", "4712-"),
        f"{local[:-1]}{flipped[-1]}@{domain}",
        f"{local}@elsewhere.example",
        path.replace("bounces+", "other+"),
        verp.return_path({**SETTINGS, "SECRET_KEY": "x" * 40}, 4711),
        "bounces+" + mailto.split("+", 1)[1],
        f"bounces+0-{tag}@{domain}",
        f"bounces+99999999999-{tag}@{domain}",
        "bounces@news.example.org",
        "bounces+@news.example.org",
        "",
        "not an address",
        "bounces+4711-ß@news.example.org",
    ]:
        assert verp.delivery_of(SETTINGS, forged) is None, forged
    assert verp.return_path({**SETTINGS, "VERP_ENABLED": False}, 4711) == SETTINGS["MAIL_FROM"]
    other = {**SETTINGS, "BOUNCE_DOMAIN": "bounce.example.net", "BOUNCE_LOCAL_PART": "b"}
    assert verp.return_path(other, 5).startswith("b+5-")
    assert verp.delivery_of(other, verp.return_path(other, 5)) == 5


def test_unsubscribe_mailtos_decode_only_when_genuine() -> None:
    """The mailto address (bare, bracketed, or as the mailto: URL) decodes to its reader; a
    forged token, no token, or a VERP token in its place decodes to None."""
    address = verp.unsubscribe_address(SETTINGS, 42)
    assert address.startswith("unsubscribe+42-") and address.endswith("@news.example.org")
    for given in [
        address,
        address.upper(),
        f"<{address}>",
        f"mailto:{address}?subject=unsubscribe",
    ]:
        assert verp.subscriber_of_mailto(SETTINGS, given) == 42
    path = verp.return_path(SETTINGS, 42)
    for forged in [
        address.replace("+42-", "+43-"),
        "unsubscribe@news.example.org",
        "unsubscribe+42@news.example.org",
        "unsubscribe+" + path.split("+", 1)[1],
        address.replace("news.example.org", "evil.example"),
    ]:
        assert verp.subscriber_of_mailto(SETTINGS, forged) is None, forged


def test_the_readers_mailto_is_signed_by_dkim(key_pair: tuple[Path, bytes]) -> None:  # noqa: F811
    """A campaign reader's own mailto is in List-Unsubscribe, which DKIM covers: swapping in
    another reader's token breaks the signature."""
    path, record = key_pair
    settings = signing_config(path)
    rendered = render_segment(seed(), make_segment(["policy"], "full", "zh", TOPICS), settings)
    recipient = Recipient(
        "reader@example.com", "王小明", "zh", "https://n.example/u/t", "https://n.example/p/t", 7
    )
    wire = issue_message(rendered, recipient, settings).as_bytes()
    mine = verp.unsubscribe_address(settings, 7).encode()
    assert b"<mailto:" + mine + b"?subject=unsubscribe>" in wire
    assert dkim.verify(wire, dnsfunc=dns(record))
    other = verp.unsubscribe_address(settings, 8).encode()
    assert not dkim.verify(wire.replace(mine, other), dnsfunc=dns(record))
    sample = Recipient(
        "reader@example.com", None, "zh", "https://n.example/u/t", "https://n.example/p/t"
    )
    plain = issue_message(rendered, sample, segment_config()).as_bytes()
    assert b"<mailto:unsubscribe@" in plain and b"unsubscribe+" not in plain


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("VERP_ENABLED", "yes"),
        ("BOUNCE_DOMAIN", "bounce.example.org\r\nBcc: x@y"),
        ("BOUNCE_DOMAIN", "x@example.org"),
        ("BOUNCE_LOCAL_PART", "bounces+more"),
        ("UNSUBSCRIBE_MAILTO", "unsubscribe"),
        ("UNSUBSCRIBE_MAILTO", "un subscribe@example.org"),
    ],
)
def test_settings_that_would_break_the_addresses_are_refused(key: str, value: Any) -> None:
    """A VERP switch that is not true/false, a bounce domain or user part with a line break,
    @ or +, and an unsubscribe address without @ stop the app with a sentence naming it."""
    check(segment_config(SECRET_KEY="s" * 40, RATELIMIT_STORAGE_URL="memory://"))
    with pytest.raises(ConfigError, match=f"NEWSLETTER_{key}"):
        check(
            segment_config(SECRET_KEY="s" * 40, RATELIMIT_STORAGE_URL="memory://", **{key: value})
        )
