"""The inbound mail receiver: an SMTP server for our bounce and unsubscribe addresses.

A relay or Postfix forwards mail (SMTP, or LMTP with ``--lmtp``) for ``BOUNCE_LOCAL_PART[+…]@BOUNCE_DOMAIN`` and for
``UNSUBSCRIBE_MAILTO`` (and its ``+TOKEN`` forms) here; every other recipient is refused with
550, so the receiver is nobody's open mailbox. Each message is read by
``inbound.classify.classify`` and its events written by ``inbound.events.record`` in one
transaction, and only once that transaction has committed does the client hear 250: a relay whose
message we lost to a crash or a database outage (451) still has it and tries again, and the same
report delivered twice counts once.

Limits: ``INBOUND_MAX_BYTES`` per message (552 above it; the report parts are read from its first
megabyte only), ``INBOUND_MESSAGES_PER_MINUTE`` from one client address (451, try later) and
``INBOUND_CONNECTIONS_PER_CLIENT`` connections held open by one address (421), and
``INBOUND_CONNECTIONS`` held open in all (421): many addresses (an IPv6 network has plenty) each under
their own limit must not use up the process's sockets. Bad mail of any shape is logged and
answered 250 with nothing changed; the server itself never stops on it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections import defaultdict
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from core import db
from core.config import DEFAULTS
from inbound.classify import classify
from inbound.events import record
from mailer import verp

log = logging.getLogger(__name__)
# Recipients one message may name: a report comes to one address; more is someone else's mail.
MAX_RECIPIENTS = 20
LIMITS = (
    "INBOUND_MAX_BYTES",
    "INBOUND_MESSAGES_PER_MINUTE",
    "INBOUND_CONNECTIONS_PER_CLIENT",
    "INBOUND_CONNECTIONS",
    "INBOUND_SESSION_SECONDS",
)
# Connections held open from all clients together, unless the settings say otherwise: a relay
# or two need a handful each.
CONNECTIONS: int = DEFAULTS["INBOUND_CONNECTIONS"][0]


def is_ours(config: Mapping[str, Any], address: str) -> bool:
    """Whether we take mail for the address: the bounce address or the unsubscribe address,
    bare or with any ``+tag`` (a forged tag is taken, read, and changes nothing)."""
    bases = (
        (str(config["BOUNCE_LOCAL_PART"]), verp.bounce_domain(config)),
        tuple(str(config["UNSUBSCRIBE_MAILTO"]).rsplit("@", 1)),
    )
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    if not at:
        return False
    for base_local, base_domain in bases:
        base_local = base_local.lower()
        if domain.rstrip(".") != base_domain.lower():
            continue
        if local == base_local or local.startswith(base_local + "+"):
            return True
    return False


def limit_key(client: str) -> str:
    """What the limits count by: an IPv4 address, or an IPv6 address's /64 network (one site or
    one customer gets a whole /64, and can take a new address from it for each connection);
    an IPv4-mapped IPv6 address counts as its IPv4 address."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimit:
    """Messages per client address within a sliding minute, and connections held open by
    each address and by all of them; an IPv6 client is counted by its /64 (limit_key)."""

    def __init__(self, per_minute: int, connections: int, total: int = CONNECTIONS) -> None:
        self.per_minute = per_minute
        self.connections = connections
        self.total = total
        self.sent: defaultdict[str, deque[float]] = defaultdict(deque)
        self.open: defaultdict[str, int] = defaultdict(int)
        self.held = 0
        self.lock = threading.Lock()

    def connect(self, client: str) -> str | None:
        """None when the client may connect (it is counted); else the 421 reply saying why not."""
        client = limit_key(client)
        with self.lock:
            if self.held >= self.total:
                return "421 4.7.0 Too many connections, try again later"
            if self.open[client] >= self.connections:
                return "421 4.7.0 Too many connections from your address"
            self.open[client] += 1
            self.held += 1
            return None

    def disconnect(self, client: str) -> None:
        client = limit_key(client)
        with self.lock:
            self.held -= 1
            self.open[client] -= 1
            if self.open[client] <= 0:
                del self.open[client]

    def message(self, client: str) -> bool:
        client = limit_key(client)
        now = time.monotonic()
        with self.lock:
            if len(self.sent) > 10_000:
                # Forget clients quiet for a minute, so many addresses cannot grow the table.
                for quiet in [c for c, t in self.sent.items() if not t or t[-1] < now - 60]:
                    del self.sent[quiet]
            times = self.sent[client]
            while times and times[0] < now - 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            return True


class InboundHandler:
    """aiosmtpd's handler: which recipients we take, and what a message becomes."""

    def __init__(self, app: Flask, limit: RateLimit, lmtp: bool = False) -> None:
        self.app = app
        self.config = app.config
        self.limit = limit
        self.lmtp = lmtp

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not self.limit.message(_client(session)):
            log.warning("inbound: %s sends too many messages, told to wait", _client(session))
            return "451 4.7.1 Too many messages from your address, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not is_ours(self.config, address):
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        # The database work is blocking: it runs on a thread, the server keeps serving others.
        reply = await loop.run_in_executor(
            None, self.store, raw, list(envelope.rcpt_tos), _client(session)
        )
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if self.lmtp else reply

    def store(self, raw: bytes, recipients: list[str], client: str) -> str:
        """Classify for each recipient and record every event in one transaction; the reply."""
        with self.app.app_context():
            try:
                with db.transaction() as db_session:
                    effects = []
                    for recipient in recipients:
                        for event in classify(raw, recipient, self.config):
                            outcome = record(db_session, self.config, event)
                            effects.append(f"{event.kind}:{outcome.effect}")
            except SQLAlchemyError as error:
                log.error("inbound: message from %s not recorded: %s", client, error)
                return "451 4.3.0 Could not record the message now, try again later"
        log.info(
            "inbound: %d bytes from %s to %s: %s",
            len(raw),
            client,
            ", ".join(recipients),
            ", ".join(effects) or "nothing to do",
        )
        return "250 OK"


def _client(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class _Counted:
    """A session that refuses a connection past either connection limit (SMTP and LMTP), and
    ends one that lasts longer than INBOUND_SESSION_SECONDS: aiosmtpd's timeout is per command,
    so a client trickling its DATA a byte at a time would otherwise hold its place for good."""

    limit: RateLimit
    lifetime: float
    counted: str | None = None
    ending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        refusal = self.limit.connect(client) if self.counted is None else None
        if refusal is not None:
            log.warning("inbound: connection from %s refused: %s", client, refusal)
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(refusal.encode("ascii") + b"\r\n")
            transport.close()
            return
        self.counted = client
        if self.ending is None:  # connection_made comes again after STARTTLS
            loop = asyncio.get_running_loop()
            self.ending = loop.call_later(self.lifetime, _end, transport, client)
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        if self.counted is None:
            return
        if self.ending is not None:
            self.ending.cancel()
            self.ending = None
        self.limit.disconnect(self.counted)
        self.counted = None
        super().connection_lost(error)  # type: ignore[misc]


def _end(transport: asyncio.BaseTransport, client: str) -> None:
    """Close a session that lasted too long; what it had not finished sending is not taken."""
    log.warning("inbound: session from %s lasted too long, closed", client)
    if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
        transport.write(b"421 4.4.2 Session too long, closing connection\r\n")
    transport.close()


class InboundSMTP(_Counted, SMTP):
    def __init__(self, handler: InboundHandler, **options: Any) -> None:
        super().__init__(handler, **options)
        self.limit = handler.limit
        self.lifetime = float(handler.config["INBOUND_SESSION_SECONDS"])


class InboundLMTP(_Counted, LMTP):
    """LMTP (RFC 2033), for a Postfix that hands mail over with its lmtp transport: after DATA
    one reply per accepted recipient, all the same, as they are recorded in one transaction."""

    def __init__(self, handler: InboundHandler, **options: Any) -> None:
        super().__init__(handler, **options)
        self.limit = handler.limit
        self.lifetime = float(handler.config["INBOUND_SESSION_SECONDS"])


class InboundController(Controller):
    def __init__(self, handler: InboundHandler, lmtp: bool = False, **options: Any) -> None:
        super().__init__(handler, **options)
        self.inbound = handler
        self.lmtp = lmtp

    def factory(self) -> SMTP:
        session = InboundLMTP if self.lmtp else InboundSMTP
        return session(self.inbound, **self.SMTP_kwargs)


def controller(
    app: Flask, host: str, port: int, lmtp: bool = False, connections: int | None = None
) -> InboundController:
    """A receiver for ``app`` on host:port (LMTP with ``lmtp``), holding at most
    ``connections`` open (INBOUND_CONNECTIONS by default), not yet started; ValueError naming a
    limit that is not a positive whole number."""
    config = app.config
    for key in LIMITS:
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"NEWSLETTER_{key} must be a positive whole number, not {value!r}.")
    limit = RateLimit(
        int(config["INBOUND_MESSAGES_PER_MINUTE"]),
        int(config["INBOUND_CONNECTIONS_PER_CLIENT"]),
        connections or int(config["INBOUND_CONNECTIONS"]),
    )
    return InboundController(
        InboundHandler(app, limit, lmtp),
        lmtp=lmtp,
        hostname=host,
        port=port,
        data_size_limit=int(config["INBOUND_MAX_BYTES"]),
        ident="newsletter inbound",
        timeout=120,
        # A session that repeats one command without end is a client to drop, not to serve.
        command_call_limit=200,
    )
