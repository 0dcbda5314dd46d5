"""The inbound receiver as its own process (flask --app web inbound serve), over real SMTP:
bounces of a real campaign, mailed unsubscribes, refused recipients, limits, a database outage."""

from __future__ import annotations

import dataclasses
import re
import smtplib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from campaigns import control
from campaigns.models import Delivery
from core import create_app
from core.config import DEFAULTS
from inbound import receiver as receiver_module
from inbound.models import MailEventRow
from issues import store
from mailer import verp
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from subscribers.models import Suppression
from subscribers.service import email_hash
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import kill_worker
from tests.campaign_helpers import on_own_broker
from tests.campaign_helpers import ready_seed
from tests.campaign_helpers import received
from tests.campaign_helpers import send_now
from tests.campaign_helpers import start_worker
from tests.campaign_helpers import wait_for_status
from tests.conftest import POSTGRES_ADMIN_URL
from tests.conftest import ROOT
from tests.conftest import SmtpSink
from tests.conftest import free_port
from tests.helpers import SEED
from tests.inbound_helpers import Receiver
from tests.inbound_helpers import dsn
from tests.inbound_helpers import send
from tests.inbound_helpers import start_receiver

CORPUS = Path(__file__).parent / "data" / "bounces"
VERP = {"VERP_ENABLED": True, "BOUNCE_DOMAIN": "bounce.newsletter.test"}


@pytest.fixture(scope="module")
def receiver_process(
    settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    """One receiver process per database for this module's tests."""
    process = start_receiver(settings, tmp_path_factory.mktemp("inbound") / "log", **VERP)
    yield process
    process.stop()


@pytest.fixture
def receiver(receiver_process: Receiver, app: Flask) -> Receiver:
    """The running receiver, checked alive, on the test's emptied database."""
    assert receiver_process.alive(), receiver_process.output()[-3000:]
    return receiver_process


_servers: list[Any] = []


def _in_process(app: Flask, lmtp: bool = False, **options: Any) -> int:
    """The receiver in this process (aiosmtpd's Controller) for the app; its port."""
    port = free_port()
    server = receiver_module.controller(app, "127.0.0.1", port, lmtp, **options)
    server.start()
    _servers.append(server)
    return port


def _planned(app: Flask, db: Session) -> dict[int, int]:
    """A campaign of the seed issue planned (not sent): each reader's delivery id."""
    issue = ready_seed(app, db)
    with app.app_context():
        editor = control.Editor("editor@newsletter.test", is_admin=True)
        campaign = control.create(db, issue.id, editor, app.config, lambda _id: None)
        db.commit()
        control.start(db, campaign.id, None, app.config)
        db.commit()
    rows = db.execute(select(Delivery.subscriber_id, Delivery.id)).all()
    db.rollback()
    return {subscriber_id: delivery_id for subscriber_id, delivery_id in rows}


def _config(app: Flask) -> dict[str, Any]:
    return {**app.config, **VERP}


def _statuses(db: Session) -> dict[str, str]:
    db.expire_all()
    found = {s.email: s.status for s in db.scalars(select(Subscriber))}
    db.rollback()
    return found


def _suppressed(db: Session) -> set[str]:
    found = set(db.scalars(select(Suppression.email_hash)))
    db.rollback()
    return found


def test_bounces_of_a_campaign_mark_deliveries_and_readers_and_the_next_issue_skips_them(
    app: Flask,
    db: Session,
    settings: dict[str, Any],
    smtp_sink: SmtpSink,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """A campaign sent with VERP through the sink, then relay DSNs for three of its deliveries
    into the receiver: two permanent ones mark those deliveries and readers bounced and suppress
    the addresses, a temporary one only counts, and the next issue does not mail the two."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 6, app.config)
    with on_own_broker(settings, 11, **VERP) as (own_app, own_settings):
        _bounce_and_send_again(own_app, own_settings, db, issue.id, readers, smtp_sink, receiver,
                               tmp_path)  # fmt: skip


def _bounce_and_send_again(
    app: Flask,
    settings: dict[str, Any],
    db: Session,
    issue_id: int,
    readers: list[Subscriber],
    smtp_sink: SmtpSink,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    worker = start_worker(settings, tmp_path / "worker.log", beat=False)
    try:
        campaign_id = send_now(app, db, issue_id)
        wait_for_status(db, campaign_id, "done", timeout=120)
        senders = {rcpts[0].lower(): sender for sender, rcpts, _ in smtp_sink.messages}
        gone, also_gone, slow = readers[0].email, readers[1].email, readers[2].email
        assert all(verp.delivery_of(_config(app), senders[a]) for a in (gone, also_gone, slow))
        for address in (gone, also_gone):
            code, reply = send(receiver.port, [senders[address]], dsn(address, senders[address]))
            assert code == 250, reply
        temporary = dsn(slow, senders[slow], status="4.2.2", action="delayed",
                        diagnostic="smtp; 452 4.2.2 Mailbox full")  # fmt: skip
        assert send(receiver.port, [senders[slow]], temporary)[0] == 250

        statuses = _statuses(db)
        assert statuses[gone] == statuses[also_gone] == "bounced"
        assert statuses[slow] == "active"
        assert _suppressed(db) == {email_hash(gone), email_hash(also_gone)}
        bounced = set(
            db.scalars(select(Delivery.subscriber_id).where(Delivery.status == "bounced"))
        )
        assert bounced == {readers[0].id, readers[1].id}
        effects = sorted(db.scalars(select(MailEventRow.effect)))
        assert effects == ["soft_counted", "suppressed", "suppressed"]
        db.rollback()

        smtp_sink.reset()
        parsed = dataclasses.replace(
            store.parse(SEED.read_bytes(), "seed.txt", app.config),
            number=362,
            content_hash="2" * 64,
        )
        next_issue = store.store_issue(db, parsed).issue
        db.commit()
        store.set_status(db, next_issue.id, "ready")
        db.commit()
        next_campaign = send_now(app, db, next_issue.id)
        wait_for_status(db, next_campaign, "done", timeout=120)
        got = received([message for message in smtp_sink.parsed()])
        assert set(got) == {r.email for r in readers[2:]}
    finally:
        kill_worker(worker)


def test_a_mailed_unsubscribe_counts_only_with_a_valid_token(
    app: Flask, db: Session, receiver: Receiver
) -> None:
    """Mail to the reader's own unsubscribe+TOKEN address unsubscribes them with a consent
    record; mail to the bare address, an altered token, or another reader's id with a made-up
    tag does nothing, even with the reader's address forged in From."""
    target, bystander = add_readers(db, 2, app.config)
    config = _config(app)
    forged = f"From: {target.email}\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n".encode()
    own = verp.unsubscribe_address(config, target.id)
    local, domain = own.split("@")
    altered = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    made_up = f"unsubscribe+{bystander.id}-abcdefghijklmnop@{domain}"
    bare = str(config["UNSUBSCRIBE_MAILTO"])
    for address in (bare, altered, made_up):
        assert send(receiver.port, [address], forged)[0] == 250
    assert _statuses(db) == {target.email: "active", bystander.email: "active"}

    assert send(receiver.port, [own.upper()], forged)[0] == 250
    assert _statuses(db) == {target.email: "unsubscribed", bystander.email: "active"}
    consent = db.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == target.id)).one()
    assert (consent.action, consent.source) == ("unsubscribe", "mailto")
    # The same mail again is the same event: recorded once.
    assert send(receiver.port, [own], forged)[0] == 250
    assert db.scalar(select(func.count(MailEventRow.id))) == 1


def test_recipients_that_are_not_ours_are_refused(
    app: Flask, db: Session, receiver: Receiver
) -> None:
    """RCPT for another local part, another domain or a look-alike is refused with 550, so the
    receiver relays nothing and stores nothing for anyone else."""
    for address in (
        "postmaster@example.org",
        "someone@gmail.com",
        "bounces@newsletter.test.evil.example",
        "bouncesx@bounce.newsletter.test",
        "unsubscribe-me@newsletter.test",
    ):
        code, reply = send(receiver.port, [address], b"Subject: hi\r\n\r\nhi\r\n")
        assert code == 550, (address, reply)
    assert db.scalar(select(func.count(MailEventRow.id))) == 0


def test_a_client_over_the_message_rate_or_connection_limit_is_told_to_wait(app: Flask) -> None:
    """Past INBOUND_MESSAGES_PER_MINUTE a client's MAIL is answered 451, and a connection past
    INBOUND_CONNECTIONS_PER_CLIENT is closed with 421 (the receiver in this process)."""
    app.config.update(INBOUND_MESSAGES_PER_MINUTE=3, INBOUND_CONNECTIONS_PER_CLIENT=2, **VERP)
    limited = _in_process(app)
    try:
        bounce = "bounces@bounce.newsletter.test"
        codes = [send(limited, [bounce], b"Subject: x\r\n\r\nx\r\n")[0] for _ in range(4)]
        assert codes == [250, 250, 250, 451]
        held = [smtplib.SMTP("127.0.0.1", limited, timeout=10) for _ in range(2)]
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", limited, timeout=10)
            assert refused.value.smtp_code == 421
        finally:
            for client in held:
                client.close()
    finally:
        _servers.pop().stop()


def test_connections_past_the_receivers_own_limit_are_told_to_wait(app: Flask) -> None:
    """Clients each under INBOUND_CONNECTIONS_PER_CLIENT (from 127.0.0.1, .2 and .3) together
    past INBOUND_CONNECTIONS: the next one is closed with 421, and a connection closed frees
    its place (review of issue 11)."""
    app.config.update(INBOUND_CONNECTIONS_PER_CLIENT=2, INBOUND_CONNECTIONS=3)
    limited = _in_process(app)

    def connect(source: str) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", limited, timeout=10, source_address=(source, 0))

    try:
        held = [connect("127.0.0.1"), connect("127.0.0.1"), connect("127.0.0.2")]
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                connect("127.0.0.3")
            assert refused.value.smtp_code == 421
            assert b"try again later" in refused.value.smtp_error
            held.pop().quit()
            # The receiver counts the closed connection out as it notices it, a moment later.
            deadline = time.monotonic() + 10
            while True:
                try:
                    late = connect("127.0.0.3")
                    break
                except smtplib.SMTPConnectError:
                    assert time.monotonic() < deadline, "the closed connection's place stayed taken"
                    time.sleep(0.05)
            assert late.noop()[0] == 250
            late.quit()
        finally:
            for client in held:
                client.close()
    finally:
        _servers.pop().stop()


def test_a_report_is_answered_451_when_the_database_cannot_take_it(
    app: Flask, settings: dict[str, Any], tmp_path: Path
) -> None:
    """With its database unreachable the receiver answers 451 (the relay keeps the report and
    tries again), logs why, and keeps serving."""
    url = str(settings["DATABASE_URL"])
    admin = None
    if url.startswith("sqlite"):
        broken = f"sqlite:///{tmp_path / 'no-tables.db'}"
    else:
        # A database that answers but has none of our tables: every write fails.
        name = f"newsletter_empty_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        broken = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    down = start_receiver(settings, tmp_path / "down.log", DATABASE_URL=broken, **VERP)
    try:
        report = dsn("r0@qq.com", "bounces@bounce.newsletter.test")
        for _ in range(2):
            code, reply = send(down.port, ["bounces@bounce.newsletter.test"], report)
            assert code == 451, reply
        assert down.alive()
        assert "not recorded" in down.output()
    finally:
        down.stop()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_a_forged_report_suppresses_nobody_but_the_delivery_it_came_back_to(
    app: Flask, db: Session, receiver: Receiver
) -> None:
    """A well-formed report naming a reader, mailed to the bare bounce address or to the return
    path of someone else's delivery (a token a reader can see in their own mail), does not touch
    the reader it names: the address in a report counts only through its return path."""
    victim, forger = add_readers(db, 2, app.config)
    config = _config(app)
    bare = f"{config['BOUNCE_LOCAL_PART']}@{config['BOUNCE_DOMAIN']}"
    assert send(receiver.port, [bare], dsn(victim.email, bare))[0] == 250
    assert _statuses(db) == {victim.email: "active", forger.email: "active"}
    assert _suppressed(db) == set()
    # Sent to the return path of the forger's own delivery, the report is about that delivery.
    path = verp.return_path(config, _planned(app, db)[forger.id])
    assert send(receiver.port, [path], dsn(victim.email, path))[0] == 250
    assert _statuses(db) == {victim.email: "active", forger.email: "bounced"}
    assert _suppressed(db) == {email_hash(forger.email)}


def test_the_compose_service_runs_the_receiver_command() -> None:
    """docker-compose.yml's inbound service runs `flask --app web inbound serve` on the port it
    publishes, with settings the code reads."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["inbound"]
    command = service["command"]
    assert command[:5] == ["flask", "--app", "web", "inbound", "serve"]
    port = command[command.index("--port") + 1]
    assert any(str(mapping).endswith(f":{port}") for mapping in service["ports"])
    app = create_app({"SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
    group = app.cli.commands["inbound"]
    assert "serve" in group.commands  # type: ignore[attr-defined]
    names = {key.removeprefix("NEWSLETTER_") for key in service["environment"]}
    assert names <= set(DEFAULTS)


def _published(mapping: str, environment: dict[str, str]) -> str:
    """A compose port mapping as Compose reads it: each ${NAME:-default} from ``environment``."""
    return re.sub(
        r"\$\{(\w+):-([^}]*)\}",
        lambda found: environment.get(found.group(1)) or found.group(2),
        mapping,
    )


def test_the_compose_receiver_listens_on_loopback_unless_told() -> None:
    """The inbound service publishes its port on 127.0.0.1 by default, so a fresh stack is not
    an SMTP server open to the internet; INBOUND_BIND opens it for an MX (review of issue 11)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    (mapping,) = compose["services"]["inbound"]["ports"]
    assert _published(str(mapping), {}) == "127.0.0.1:2525:2525"
    assert _published(str(mapping), {"INBOUND_BIND": "192.0.2.25"}) == "192.0.2.25:2525:2525"


def test_a_relay_warning_again_about_one_slow_message_counts_once(
    app: Flask, db: Session, receiver: Receiver
) -> None:
    """Four delay warnings (Action: delayed) about one delivery, as a relay sends after 4 hours,
    a day and so on, are one temporary bounce: the reader is not stopped by SOFT_BOUNCE_LIMIT."""
    (slow,) = add_readers(db, 1, app.config)
    path = verp.return_path(_config(app), _planned(app, db)[slow.id])
    for hours in (4, 24, 48, 72):
        report = dsn(slow.email, path, status="4.4.1", action="delayed",
                     diagnostic="smtp; 451 4.4.1 timed out", note=f"after {hours} hours")  # fmt: skip
        assert send(receiver.port, [path], report)[0] == 250
    assert _statuses(db) == {slow.email: "active"}
    assert list(db.scalars(select(MailEventRow.effect))) == ["soft_counted"]


def test_over_lmtp_each_recipient_gets_its_own_reply(app: Flask, db: Session) -> None:
    """In LMTP mode (--lmtp; here in this process) the receiver speaks LMTP: LHLO, then one
    reply per recipient after the data, and the report is applied to each recipient's delivery
    as over SMTP."""
    first, second = add_readers(db, 2, app.config)
    deliveries = _planned(app, db)
    app.config.update(VERP)
    port = _in_process(app, lmtp=True)
    paths = [verp.return_path(_config(app), deliveries[r.id]) for r in (first, second)]
    report = dsn(first.email, paths[0]).replace(b"\r\n.", b"\r\n..")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            replies = connection.makefile("rb")
            assert replies.readline().startswith(b"220")
            connection.sendall(b"LHLO relay.example.org\r\n")
            while not replies.readline().startswith(b"250 "):
                pass
            connection.sendall(b"MAIL FROM:<>\r\n")
            assert replies.readline().startswith(b"250")
            for path in paths:
                connection.sendall(f"RCPT TO:<{path}>\r\n".encode())
                assert replies.readline().startswith(b"250")
            connection.sendall(b"DATA\r\n")
            assert replies.readline().startswith(b"354")
            connection.sendall(report + b"\r\n.\r\n")
            assert [replies.readline()[:3] for _ in paths] == [b"250", b"250"]
            connection.sendall(b"QUIT\r\n")
            assert replies.readline().startswith(b"221")
    finally:
        _servers.pop().stop()
    # Each recipient is the return path of its own delivery: the report counts for both.
    assert _statuses(db) == {first.email: "bounced", second.email: "bounced"}


def test_a_complaint_report_names_its_reader_by_the_return_path_it_quotes(
    app: Flask, db: Session, receiver: Receiver
) -> None:
    """A feedback-loop complaint (ARF) mailed to the bare bounce address marks complained and
    suppresses the reader whose delivery's return path it quotes in Original-Mail-From; one
    quoting a made-up return path, or none, changes nobody, whatever address it names."""
    complainer, bystander = add_readers(db, 2, app.config)
    config = _config(app)
    bare = f"{config['BOUNCE_LOCAL_PART']}@{config['BOUNCE_DOMAIN']}"
    sample = (CORPUS / "own" / "arf_yahoo_01.eml").read_bytes()
    quoted = b"bounces+4711-abcdefghijklmnop@bounce.example.org"
    forged = sample.replace(b"complainer@yahoo.com", bystander.email.encode())
    assert send(receiver.port, [bare], forged)[0] == 250
    assert _statuses(db) == {complainer.email: "active", bystander.email: "active"}

    path = verp.return_path(config, _planned(app, db)[complainer.id])
    real = sample.replace(quoted, path.encode()).replace(b"complainer@yahoo.com", b"x@yahoo.com")
    assert send(receiver.port, [bare], real)[0] == 250
    assert _statuses(db) == {complainer.email: "complained", bystander.email: "active"}
    assert _suppressed(db) == {email_hash(complainer.email)}


def test_ipv6_clients_are_limited_by_their_network_not_each_address() -> None:
    """A client with an IPv6 /64 cannot pass the per-client limits by taking a new address for
    each connection or message: addresses of one /64 share the count, another /64 has its own,
    and an IPv4-mapped address counts as its IPv4 address."""
    limit = receiver_module.RateLimit(per_minute=2, connections=2)
    assert limit.connect("2001:db8:1:2::10") is None
    assert limit.connect("2001:db8:1:2:ffff::1") is None
    assert limit.connect("2001:db8:1:2::abcd") == "421 4.7.0 Too many connections from your address"
    assert limit.connect("2001:db8:1:3::10") is None
    limit.disconnect("2001:db8:1:2::10")
    assert limit.connect("2001:db8:1:2::beef") is None

    assert limit.message("2001:db8:9:9::1") and limit.message("2001:db8:9:9::2")
    assert not limit.message("2001:db8:9:9:1:2:3:4")
    assert limit.message("::ffff:192.0.2.7") and limit.message("192.0.2.7")
    assert not limit.message("::ffff:192.0.2.7")
    assert limit.message("192.0.2.8")


def test_a_session_that_lasts_too_long_is_closed_and_its_place_freed(
    app: Flask, db: Session
) -> None:
    """A client busy for longer than INBOUND_SESSION_SECONDS (each command within aiosmtpd's
    per-command timeout, as a trickled DATA is) is told 421 and closed, and its place is free
    again; nothing it had not finished is recorded."""
    app.config.update(INBOUND_SESSION_SECONDS=1, INBOUND_CONNECTIONS=1)
    port = _in_process(app)
    try:
        client = smtplib.SMTP("127.0.0.1", port, timeout=10)
        client.ehlo("relay.example.org")
        client.mail("<>")
        client.rcpt(str(app.config["UNSUBSCRIBE_MAILTO"]))
        client.putcmd("DATA")
        assert client.getreply()[0] == 354
        started = time.monotonic()
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            while time.monotonic() - started < 10:
                client.send(b"x")  # one byte at a time, as a trickling client does
                time.sleep(0.05)
        assert time.monotonic() - started < 5
        client.close()
        # The place is free again (INBOUND_CONNECTIONS is 1).
        deadline = time.monotonic() + 10
        while True:
            try:
                again = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except smtplib.SMTPConnectError:
                assert time.monotonic() < deadline, "the closed session's place stayed taken"
                time.sleep(0.05)
        assert again.noop()[0] == 250
        again.quit()
    finally:
        _servers.pop().stop()
    assert db.scalar(select(func.count(MailEventRow.id))) == 0
