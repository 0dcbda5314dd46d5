"""One batch of a campaign: claim → check → send → record, over one SMTP connection.

The guarantee, in the ledger's terms: a row is claimed (``sending``) in a committed
transaction before its message goes out, and its outcome is committed at the latest after
``SEND_RECORD_EVERY`` further messages. A worker killed at any instant therefore leaves at
most that many messages sent but not recorded; after the claim lease they are sent again,
with the same Message-ID (it is derived from the delivery, not drawn at random). Every other
claimed row was never handed to the relay and is simply sent once, later.

One more case can send a message twice, with no kill: the relay took the content but its
reply was lost (a timeout, a dropped connection). Nobody can know whether it kept the
message, so the row is a counted try and is sent again after the backoff, with the same
Message-ID; after MAX_ATTEMPTS such tries it fails. This is SMTP's own limit (RFC 1047).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import load_only

from campaigns.claims import ClaimKeeper
from campaigns.claims import claim
from campaigns.ending import BatchResult
from campaigns.ending import after_batch
from campaigns.ending import pause_for
from campaigns.ending import skip_cancelled
from campaigns.ending import status_of
from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from campaigns.plan import thaw
from campaigns.throttle import Throttle
from campaigns.throttle import is_deferral
from core.celery import soft_time_limit
from core.db import utcnow
from core.i18n import N_
from issues.models import Issue
from mailer import delivery
from mailer.dkim import DkimError
from mailer.message import IssueMail
from mailer.message import issue_mail
from mailer.segments import Recipient
from mailer.smtp import Accepted
from mailer.smtp import DeliveryFailure
from mailer.smtp import PermanentFailure
from mailer.smtp import Relay
from mailer.smtp import RelayFailure
from mailer.smtp import TemporaryFailure
from mailer.smtp import is_hard_bounce
from mailer.verp import return_path
from subscribers import links
from subscribers.models import Subscriber
from subscribers.models import Suppression
from subscribers.service import Consent
from subscribers.service import suppress

log = logging.getLogger(__name__)

# How often a batch looks whether its campaign was paused or cancelled: "within a second".
CONTROL_CHECK_SECONDS = 0.25
_PROVIDER_DEFERRAL = re.compile(r"^4\.7\.\d+")


class EditionMails:
    """The shared part of each frozen edition's emails, built once per worker process.

    Frozen editions never change, so a process keeps what it built while their campaign
    sends. The render's random nonce is part of the key: a segment id may come back (another
    database, a restore) with other content, a nonce never does. A campaign's mails (12 MB
    for the seed issue's 28 editions) are dropped once no batch of it has run here for
    ``idle_seconds``, and beyond the ``keep`` campaigns used last, so a worker that has sent
    many issues holds no more than one that has sent a few.
    """

    def __init__(self, idle_seconds: float = 300.0, keep: int = 4) -> None:
        self.idle_seconds = idle_seconds
        self.keep = keep
        # campaign id → (when a batch last used it, its mails by (segment id, nonce)),
        # the campaign used last at the end.
        self.campaigns: dict[int, tuple[float, dict[tuple[int, str], IssueMail]]] = {}

    def of(self, campaign_id: int, now: float) -> dict[tuple[int, str], IssueMail]:
        """The mails of ``campaign_id``, for a batch starting at ``now`` (monotonic seconds);
        campaigns idle for too long, or beyond the ``keep`` latest, are forgotten."""
        _, mails = self.campaigns.pop(campaign_id, (now, {}))
        self.campaigns[campaign_id] = (now, mails)
        for other, (used, _) in list(self.campaigns.items()):
            if now - used > self.idle_seconds or len(self.campaigns) > self.keep:
                del self.campaigns[other]
        return mails


_EDITIONS = EditionMails()


def message_id(delivery_id: int, config: Mapping[str, Any]) -> str:
    """The Message-ID of a delivery: the same on every try, unguessable from outside."""
    key = str(config["SECRET_KEY"]).encode()
    tag = hmac.new(key, f"delivery:{delivery_id}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"<d{delivery_id}.{tag}@{config['MESSAGE_ID_DOMAIN']}>"


def send_batch(
    db_session: Session, campaign_id: int, config: Mapping[str, Any], throttle: Throttle
) -> BatchResult:
    """Claim one batch of the campaign, send it, record every outcome; see the module note."""
    if status_of(db_session, campaign_id) != "running":
        return BatchResult(0, 0, more=False)
    ids = claim(db_session, campaign_id, int(config["BATCH_SIZE"]))
    sent = 0
    if ids:
        batch = Batch(db_session, campaign_id, config, throttle)
        sent = batch.run(ids)
    return after_batch(db_session, campaign_id, config, len(ids), sent)


class Batch:
    """The rows one task claimed, sent in order over one connection."""

    def __init__(
        self, db_session: Session, campaign_id: int, config: Mapping[str, Any], throttle: Throttle
    ) -> None:
        self.db = db_session
        self.campaign_id = campaign_id
        self.config = config
        self.throttle = throttle
        self.record_every = int(config["SEND_RECORD_EVERY"])
        self.lease = timedelta(seconds=int(config["SEND_CLAIM_LEASE_SECONDS"]))
        self.unrecorded = 0
        self.accepted = 0
        # Whether the campaign counts relay failures that an accepted message should end.
        self.relay_failures = False
        # The first message is checked too: a pause may have come while the batch waited.
        self.checked_at = 0.0
        self.nonces: dict[int, str] = {}
        self.started = time.monotonic()
        self.mails = _EDITIONS.of(campaign_id, self.started)
        # Half the soft time limit: a batch stops taking messages well before it is cut off.
        self.time_budget = soft_time_limit(config) / 2

    def run(self, ids: list[int]) -> int:
        """Send the claimed rows, their claims kept alive meanwhile; the number the relay took."""
        engine = self.db.get_bind()
        assert isinstance(engine, Engine)
        with ClaimKeeper(engine, self.campaign_id, ids, self.lease):
            rows = self._skip_the_departed(self._load(ids))
            relay = Relay(self.config)
            try:
                return self._send_all(relay, rows)
            finally:
                relay.close()
                self._commit()

    def _send_all(self, relay: Relay, rows: list[tuple[Delivery, Subscriber]]) -> int:
        """Send in order; stop early (giving the rest back) when the campaign is no longer
        running, the relay or our own settings fail, or the batch has used half the task's
        time limit, so that no row is ever cut off mid-batch with a try counted."""
        sent = 0
        for index, (row, subscriber) in enumerate(rows):
            try:
                if not self._still_running() or self._out_of_time():
                    self._release([r for r, _ in rows[index:]])
                    break
                outcome = self._send_one(relay, row, subscriber)
            except SoftTimeLimitExceeded:
                if relay.handed_over and row.status == "sending":
                    # Cut off while the relay had the content and had not answered: it may
                    # have kept it, so this is a counted try, as for a lost reply.
                    lost = TemporaryFailure(421, "no reply before the task's time ran out")
                    delivery.record(row, lost, self.config)
                self._release([r for r, _ in rows[index:]])
                break
            if outcome == "stop":
                self._release([r for r, _ in rows[index:]])
                break
            sent += outcome == "sent"
            self._maybe_commit()
        return sent

    def _out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.time_budget

    # --- loading and checking -------------------------------------------------------------

    def _load(self, ids: list[int]) -> list[tuple[Delivery, Subscriber | None]]:
        query = (
            select(Delivery, Subscriber)
            # A reader removed by hand has no row: theirs is skipped, not left claimed.
            .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
            # What sending needs of each reader: their topics (a set parsed from JSON for
            # each row) and the rest were 3 % of a worker's time, read and never looked at.
            .options(
                load_only(
                    Subscriber.email,
                    Subscriber.email_hash,
                    Subscriber.name,
                    Subscriber.locale,
                    Subscriber.status,
                    Subscriber.erased_at,
                    Subscriber.link_nonce,
                )
            )
            # The rows as the claim just wrote them, even if this session held them already.
            .execution_options(populate_existing=True)
        )
        rows: list[tuple[Delivery, Subscriber | None]] = [
            (row, subscriber) for row, subscriber in self.db.execute(query)
        ]
        # Which render each edition of the batch is, to find its shared part in the cache.
        segment_ids = {row.segment_id for row, _ in rows}
        self.nonces = dict(
            self.db.execute(
                select(CampaignSegment.id, CampaignSegment.nonce).where(
                    CampaignSegment.id.in_(segment_ids)
                )
            ).all()
        )
        return rows

    def _skip_the_departed(
        self, rows: list[tuple[Delivery, Subscriber | None]]
    ) -> list[tuple[Delivery, Subscriber]]:
        """Readers who left, were blocked or erased since planning are skipped, with why."""
        hashes = [s.email_hash for _, s in rows if s is not None and s.email_hash]
        blocked = set(
            self.db.scalars(
                select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes))
            )
        )
        kept = []
        for row, subscriber in rows:
            reason = "erased" if subscriber is None else _departed(subscriber, blocked)
            if subscriber is not None and reason is None:
                kept.append((row, subscriber))
            else:
                row.status, row.skip_reason = "skipped", reason
                row.attempts -= 1
        self._commit()
        return kept

    def _still_running(self) -> bool:
        """Every quarter second: is the campaign still running (not paused or cancelled)?
        Whether other batches met relay failures is read at the same time."""
        if time.monotonic() - self.checked_at < CONTROL_CHECK_SECONDS:
            return True
        self.checked_at = time.monotonic()
        # Outcomes not yet committed stay unflushed: flushing them here would take SQLite's
        # write lock (and PostgreSQL's row locks) across the SMTP waits of the next messages.
        with self.db.no_autoflush:
            status, failures = self.db.execute(
                select(Campaign.status, Campaign.relay_failures).where(
                    Campaign.id == self.campaign_id
                )
            ).one()
        self.relay_failures = bool(failures)
        return status == "running"

    # --- one message ----------------------------------------------------------------------

    def _send_one(self, relay: Relay, row: Delivery, subscriber: Subscriber) -> str:
        """Send one row; "sent", "failed" (any recorded outcome) or "relay" (stop the batch)."""
        wait = self.throttle.provider_wait(row.domain)
        if wait > 0:
            # This provider is rate-limited or asked us to slow down: leave this reader for
            # later, without counting a try, and go on with the others.
            self._later(row, wait)
            return "failed"
        self.throttle.wait_for_send()
        row.message_id = message_id(row.id, self.config)
        try:
            mail = self._mail(row.segment_id)
            email = mail.message(_recipient(row, subscriber), row.message_id)
        except DkimError as error:
            # Our own settings, not this reader: nobody can be sent until they are fixed.
            self._stop(N_("The emails cannot be signed (DKIM): %(error)s"), error=str(error))
            return "stop"
        except ValueError as error:
            # This reader's own values (a link or slot that cannot be used): a counted try.
            delivery.record_unbuilt(row, error, self.config)
            self.unrecorded += 1
            return "failed"
        self.unrecorded += 1
        try:
            # The envelope sender names the delivery when VERP is on, so its bounce does too.
            result: Accepted | DeliveryFailure = relay.send(
                email, return_path(self.config, row.id), subscriber.email
            )
        except RelayFailure as error:
            if error.stage == "rcpt" and _PROVIDER_DEFERRAL.match(error.reply.strip()):
                # The receiving provider asks us to slow down: a counted try for this reader
                # (so a provider that never relents fails it in the end), a pause for the
                # domain, and the others go on.
                self.throttle.back_off(row.domain)
                delivery.record(row, error, self.config)
                return "failed"
            if relay.handed_over:
                # The connection failed after the content was written: the relay may have
                # taken it. A counted try, so that a message whose reply never comes is not
                # handed over again and again, uncounted, with every batch (see the module
                # note); its next try, after the backoff, has the same Message-ID.
                delivery.record(row, error, self.config)
            self._relay_failed(error)
            return "stop"
        except DeliveryFailure as error:
            result = error
        self._settle(row, subscriber, result)
        return "sent" if isinstance(result, Accepted) else "failed"

    def _settle(
        self, row: Delivery, subscriber: Subscriber, result: Accepted | DeliveryFailure
    ) -> None:
        """Record the relay's answer; a hard bounce also blocks the address."""
        delivery.record(row, result, self.config)
        if isinstance(result, Accepted):
            self.accepted += 1
        elif isinstance(result, PermanentFailure) and is_hard_bounce(result):
            row.status = "bounced"
            note = f"{result.code} {result.reply}"[:300]
            suppress(self.db, subscriber.email, "hard_bounce", Consent(source="bounce", note=note))
            # Written at once: the block must not wait for the rest of the group.
            self._commit()
        elif isinstance(result, TemporaryFailure) and is_deferral(result.code, result.reply):
            self.throttle.back_off(row.domain)

    def _mail(self, segment_id: int) -> IssueMail:
        mail = self.mails.get((segment_id, self.nonces[segment_id]))
        if mail is None:
            with self.db.no_autoflush:
                return self._build_mail(segment_id)
        return mail

    def _build_mail(self, segment_id: int) -> IssueMail:
        """The shared part of one frozen edition's emails, made once per worker process."""
        segment = self.db.get(CampaignSegment, segment_id)
        assert segment is not None
        number = self.db.scalar(
            select(Issue.number)
            .join(Campaign, Campaign.issue_id == Issue.id)
            .where(Campaign.id == segment.campaign_id)
        )
        mail = issue_mail(thaw(segment, int(number or 0)), self.config)
        self.mails[(segment_id, segment.nonce)] = mail
        return mail

    # --- giving rows back -----------------------------------------------------------------

    def _later(self, row: Delivery, seconds: float) -> None:
        """Give ``row`` back for a later try that does not count against the reader."""
        row.status, row.attempts = "retry", row.attempts - 1
        row.next_attempt_at = utcnow() + timedelta(seconds=seconds)
        self.unrecorded += 1

    def _release(self, rows: list[Delivery]) -> None:
        """Rows claimed but never handed to the relay go back to the queue, tries uncounted."""
        for row in rows:
            if row.status == "sending":
                row.status, row.attempts = "queued", row.attempts - 1
                row.claimed_at = None
        self._commit()
        # A send cancelled meanwhile keeps none of them waiting.
        if self._status() == "cancelled":
            skip_cancelled(self.db, self.campaign_id)

    def _stop(self, msgid: str, **params: Any) -> None:
        """Pause the campaign for a problem of ours that no reader caused."""
        log.warning("campaign %s paused: %s", self.campaign_id, msgid % params)
        pause_for(self.db, self.campaign_id, msgid, **{k: str(v)[:300] for k, v in params.items()})

    def _relay_failed(self, error: RelayFailure) -> None:
        """Count a relay failure for the campaign; enough in a row pause it, with why."""
        self.db.execute(
            update(Campaign)
            .where(Campaign.id == self.campaign_id)
            .values(relay_failures=Campaign.relay_failures + 1)
        )
        failures = int(
            self.db.scalar(select(Campaign.relay_failures).where(Campaign.id == self.campaign_id))
            or 0
        )
        log.warning("campaign %s: relay failure %s: %s", self.campaign_id, failures, error)
        if failures >= int(self.config["SEND_RELAY_FAILURES_TO_PAUSE"]):
            pause_for(
                self.db,
                self.campaign_id,
                N_("The mail server failed %(count)s times in a row; its last answer: %(reply)s"),
                count=failures,
                reply=f"{error.code} {error.reply}"[:300],
            )

    # --- committing -----------------------------------------------------------------------

    def _maybe_commit(self) -> None:
        """Commit every ``SEND_RECORD_EVERY`` outcomes: the in-flight bound."""
        if self.unrecorded >= self.record_every:
            self._commit()

    def _commit(self) -> None:
        if self.accepted and self.relay_failures:
            # The relay takes messages again: the run of relay failures is over.
            self.db.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id, Campaign.relay_failures > 0)
                .values(relay_failures=0)
            )
            self.relay_failures = False
        self.accepted = 0
        self.db.commit()
        self.unrecorded = 0

    def _status(self) -> str | None:
        return self.db.scalar(select(Campaign.status).where(Campaign.id == self.campaign_id))


def _departed(subscriber: Subscriber, blocked: set[str]) -> str | None:
    if subscriber.erased_at is not None or subscriber.email_hash is None:
        return "erased"
    if subscriber.email_hash in blocked:
        return "suppressed"
    if subscriber.status == "unsubscribed":
        return "unsubscribed"
    if subscriber.status != "active":
        return "inactive"
    return None


def _recipient(row: Delivery, subscriber: Subscriber) -> Recipient:
    return Recipient(
        email=subscriber.email,
        name=subscriber.name,
        locale=subscriber.locale,
        unsubscribe_url=links.unsubscribe_url(subscriber),
        preferences_url=links.preferences_url(subscriber),
        subscriber_id=subscriber.id,
    )
