"""A campaign of the real issue through the real path: every active reader gets exactly one
message with exactly the articles of their topics, in their format and language; nobody else
gets anything; the ledger's counts equal the sink's."""

from __future__ import annotations

import re
from collections import Counter
from email import policy
from email.parser import BytesParser
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign
from campaigns.models import CampaignSegment
from campaigns.models import Delivery
from campaigns.send import message_id
from issues.archive import load_by_number
from issues.models import Issue
from mailer.segments import included
from subscribers.models import Subscriber
from tests.campaign_helpers import add_bystanders
from tests.campaign_helpers import add_readers
from tests.campaign_helpers import ledger
from tests.campaign_helpers import ready_seed
from tests.campaign_helpers import send_now
from tests.campaign_helpers import wait_for_status
from tests.conftest import SmtpSink

ARTICLE = re.compile(r'id="a(\d+)"')
ARTICLE_LINK = re.compile(r"/issues/361/(\d+)")
ARTICLE_LANG = re.compile(r"/issues/361/\d+(\?lang=[a-z]+)?\"")
READ_MORE = re.compile(r'class="more"[^>]*><a href="[^"]*/issues/361/(\d+)\?lang=[a-z]+"')


def test_every_reader_gets_exactly_their_edition_once(
    app: Flask, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """2,000 readers over all 28 editions, plus readers who must get nothing."""
    issue = ready_seed(app, db)
    readers = add_readers(db, 2000, app.config)
    bystanders = add_bystanders(db, app.config)
    campaign_id = send_now(app, db, issue.id)
    wait_for_status(db, campaign_id, "done")

    counts = ledger(db, campaign_id)
    assert counts == {"sent": 2000}, counts
    envelopes = Counter(rcpt.lower() for _, rcpts, _ in smtp_sink.messages for rcpt in rcpts)
    assert sum(envelopes.values()) == counts["sent"] == len(smtp_sink.messages)
    assert set(envelopes) == {reader.email for reader in readers}
    assert set(envelopes.values()) == {1}
    assert not set(bystanders) & set(envelopes)
    # One SMTP connection per batch of BATCH_SIZE readers, reused for every message in it.
    assert 1 <= smtp_sink.connections <= 2000 // app.config["BATCH_SIZE"]
    assert db.scalar(select(Issue.status).where(Issue.id == issue.id)) == "sent"
    assert db.scalar(select(Campaign.planned).where(Campaign.id == campaign_id)) == 2000
    _check_contents(app, db, campaign_id, smtp_sink)


def _check_contents(app: Flask, db: Session, campaign_id: int, sink: SmtpSink) -> None:
    """Each message holds the reader's topics' articles, in their language and format, and
    carries the delivery's fixed Message-ID."""
    stored = load_by_number(db, 361)
    assert stored is not None
    expected_articles = {}
    rows = db.execute(
        select(Delivery, Subscriber, CampaignSegment)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .join(CampaignSegment, CampaignSegment.id == Delivery.segment_id)
        .where(Delivery.campaign_id == campaign_id)
    )
    by_address = {subscriber.email: (row, subscriber, segment) for row, subscriber, segment in rows}
    for _, rcpts, content in sink.messages:
        row, subscriber, segment = by_address[rcpts[0].lower()]
        assert (segment.topics, segment.format, segment.locale) == (
            subscriber.topics,
            subscriber.format,
            subscriber.locale,
        )
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert message["Message-ID"] == row.message_id == message_id(row.id, app.config)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        key = subscriber.topics
        if key not in expected_articles:
            expected_articles[key] = {
                entry.number for part in included(stored, key) for entry in part.entries
            }
        assert {int(n) for n in ARTICLE.findall(html)} == expected_articles[key]
        linked = {int(n) for n in ARTICLE_LINK.findall(html)}
        # Every article is linked to the archive: a digest's headlines, and the full issue's
        # contents (issue 12: #anchor jumps do nothing in Gmail on iOS); "read the full
        # article" links only the shortened ones.
        assert linked == expected_articles[key]
        # ... and opens in the reader's language.
        assert set(ARTICLE_LANG.findall(html)) == {f"?lang={subscriber.locale}"}
        if subscriber.format == "full":
            more = {int(n) for n in READ_MORE.findall(html)}
            assert more == {number for number, _ in segment.shortened}
        assert ('lang="zh-CN"' if subscriber.locale == "zh" else 'lang="en"') in html
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert segment.subject == message["Subject"]
        assert len(text) > 200
