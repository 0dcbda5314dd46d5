"""Test sends of an issue: single emails through the outbox, built as the real send builds them.

A test is queued as an outbox row of kind ``campaign_test`` with the issue and the edition;
the worker renders that edition when it sends, so a test shows the issue as it is at that
moment. The links are the sample reader's, which lead nowhere, and the subject says "test".
Importing this module registers the builder; the worker imports it (core.registry.add_tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from issues.archive import load_by_number
from issues.models import Issue
from mailer import outbox
from mailer.message import issue_mail
from mailer.models import OutboxMessage
from mailer.render import render_segment
from mailer.segments import Segment
from mailer.segments import SegmentError
from mailer.segments import make_segment
from mailer.segments import sample_recipient

KIND = "campaign_test"
SUBJECT_MARKS = {"zh": "[测试] ", "en": "[Test] "}


class IssueGone(LookupError):
    """The issue of a queued test is gone; the outbox records the try as failed."""


def queue(
    db_session: Session,
    issue_id: int,
    segments: Iterable[Segment],
    addresses: Sequence[str],
    enqueue: Callable[[int], None],
) -> int:
    """One test email per edition and address, sent after the caller commits; how many.

    The row keeps the issue, topics and format; its own ``locale`` is the edition's language.
    """
    queued = 0
    for segment in segments:
        for address in addresses:
            outbox.queue(
                db_session,
                KIND,
                address,
                segment.locale,
                enqueue,
                issue_id=issue_id,
                topics=list(segment.topics),
                format=segment.format,
            )
            queued += 1
    return queued


def segments_for(choice: str, needed: list[Segment], config: Mapping[str, Any]) -> list[Segment]:
    """The editions a test-send choice names: "all" (those readers get), or one edition's
    key ("data,policy/full/zh"); none for a key that names no edition."""
    if choice == "all":
        return needed
    topics, _sep, rest = choice.partition("/")
    shape, _sep, locale = rest.partition("/")
    try:
        return [make_segment(topics.split(","), shape, locale, list(config["TOPICS"]))]
    except SegmentError:
        return []


def recent(db_session: Session, issue_id: int, limit: int = 10) -> list[OutboxMessage]:
    """The latest test emails of the issue, newest first."""
    rows = db_session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == KIND)
        .order_by(OutboxMessage.id.desc())
        .limit(limit * 10)
    )
    return [row for row in rows if row.params.get("issue_id") == issue_id][:limit]


def segment_of(message: OutboxMessage) -> Segment:
    """The edition of a queued test; its language is the row's own, the email's language."""
    params = message.params
    return Segment(tuple(params["topics"]), str(params["format"]), message.locale)


@outbox.builder(KIND)
def build(db_session: Session, message: OutboxMessage, config: Mapping[str, Any]) -> EmailMessage:
    """The edition's email for the sample reader, to the test address, its subject marked."""
    params = message.params
    number = db_session.scalar(select(Issue.number).where(Issue.id == params["issue_id"]))
    issue = load_by_number(db_session, number) if number is not None else None
    if issue is None:
        raise IssueGone(f"issue {params['issue_id']} no longer exists")
    segment = segment_of(message)
    rendered = render_segment(issue, segment, config)
    mark = SUBJECT_MARKS.get(segment.locale, SUBJECT_MARKS["en"])
    rendered = replace(rendered, subject=mark + rendered.subject)
    # The sample reader's name and dead links, but the test address in To, where it goes.
    recipient = replace(sample_recipient(config, segment.locale), email=message.to_address)
    # The outbox signs what a builder returns; signing here too would sign the message twice.
    unsigned = {**config, "DKIM_PRIVATE_KEY_PATH": None}
    return issue_mail(rendered, unsigned).message(recipient)
