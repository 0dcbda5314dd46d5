"""A worker keeps each edition's shared part while its campaign sends, and lets it go after."""

from __future__ import annotations

from typing import cast

from campaigns.send import EditionMails
from mailer.message import IssueMail

MAIL = cast(IssueMail, object())


def test_a_campaign_keeps_its_mails_between_batches() -> None:
    editions = EditionMails(idle_seconds=300)
    editions.of(1, now=0.0)[(7, "nonce")] = MAIL
    assert editions.of(1, now=299.0) == {(7, "nonce"): MAIL}
    # Each batch counts as a use: 299 s after the last one, not after the first.
    assert editions.of(1, now=598.0) == {(7, "nonce"): MAIL}


def test_a_campaign_idle_for_longer_than_the_limit_is_forgotten() -> None:
    """Campaign 1 sent its last batch here at 0 s; when campaign 2's batch starts 301 s later,
    campaign 1's mails are dropped (were it resumed, it would build them again)."""
    editions = EditionMails(idle_seconds=300)
    editions.of(1, now=0.0)[(7, "a")] = MAIL
    editions.of(2, now=100.0)[(8, "b")] = MAIL
    editions.of(2, now=301.0)
    assert list(editions.campaigns) == [2]
    assert editions.of(1, now=302.0) == {}


def test_no_more_than_keep_campaigns_are_held() -> None:
    """Five campaigns sending at once in one worker: the one used longest ago goes first."""
    editions = EditionMails(idle_seconds=300, keep=4)
    for campaign in (1, 2, 3, 4):
        editions.of(campaign, now=float(campaign))[(campaign, "n")] = MAIL
    editions.of(1, now=5.0)
    editions.of(5, now=6.0)
    assert list(editions.campaigns) == [3, 4, 1, 5]
