"""In headless Chromium: every full and digest email of the seed, and the archive pages,
fit a 375 px phone and an 800 px desktop window without scrolling sideways."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from issues import store as issues
from mailer.render import render_segment
from mailer.segments import Segment
from mailer.segments import all_segments
from mailer.segments import sample_recipient
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.test_segments import TOPICS
from tests.test_segments import config
from tests.test_segments import seed

WIDTHS = (375, 800)
# Articles with data tables, and the longest article, are the likeliest to overflow.
ARTICLES = (1, 3, 18, 20, 22, 27, 28)

BOX_OVERFLOW = """() => [...document.querySelectorAll('.tbox, .table-scroll')]
  .filter(box => box.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .length"""


def personalised(segment: Segment) -> str:
    rendered = render_segment(seed(), segment, config())
    return rendered.personalise(sample_recipient(config(), segment.locale)).html


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("edition", ["full", "digest"])
def test_every_email_fits_phone_and_desktop(page: Any, width: int, edition: str) -> None:
    """All 14 emails of a format (7 topic choices × 2 languages) load without sideways scroll."""
    page.set_viewport_size({"width": width, "height": 900})
    segments = [segment for segment in all_segments(TOPICS) if segment.format == edition]
    assert len(segments) == 14
    for segment in segments:
        page.set_content(personalised(segment))
        assert horizontal_overflow(page) == 0, segment.key
        assert page.evaluate(BOX_OVERFLOW) == 0, segment.key
        container = page.locator("table.container").bounding_box()
        # 600 px centred on a desktop; the whole width, less nothing, on a phone.
        assert container["width"] == (600 if width == 800 else width), segment.key


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_archive_pages_fit_phone_and_desktop(
    live_server: LiveServer, page: Any, db: Session, width: int
) -> None:
    """The contents page and the table-heavy and longest articles do not scroll sideways."""
    issues.store_issue(db, seed()).issue.status = "ready"
    db.commit()
    page.set_viewport_size({"width": width, "height": 900})
    for path in ["/issues/361", *(f"/issues/361/{number}" for number in ARTICLES)]:
        page.goto(live_server.url + path)
        assert page.locator("h1").count() == 1, path
        assert horizontal_overflow(page) == 0, path
        assert page.evaluate(BOX_OVERFLOW) == 0, path
