"""The editors' clock (core.clock): every time shown and typed in the console is in TIMEZONE."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from core import clock

# 07:52 UTC is 15:52 in Beijing, on the next calendar day for a late UTC time.
MOMENT = datetime(2026, 12, 1, 7, 52, tzinfo=UTC)
LATE = datetime(2026, 12, 1, 20, 5, tzinfo=UTC)


def test_times_are_shown_in_beijing_time_in_both_languages(app: Flask) -> None:
    """A stored UTC time reads as Beijing time, labelled so, in Chinese and in English."""
    with app.test_request_context("/?lang=zh"):
        assert clock.when(MOMENT) == "2026年12月1日 15:52（北京时间）"
        assert clock.clock(LATE) == "2026年12月2日 04:05"
        assert clock.zone_label() == "北京时间"
        assert clock.field_time(MOMENT) == "2026-12-01T15:52"
        assert clock.when(None) == "" and clock.clock(None) == ""
    with app.test_request_context("/?lang=en"):
        assert clock.when(MOMENT) == "1 December 2026, 15:52 (Beijing time)"
        assert clock.clock(LATE) == "2 December 2026, 04:05"


def test_templates_get_one_clock(app: Flask) -> None:
    """Any template can call clock() / when() or use them as filters, with no view passing them."""
    with app.test_request_context("/?lang=zh"):
        rendered = app.jinja_env.from_string(
            "{{ when(t) }}|{{ t|clock }}|{{ zone_label() }}|{{ field_time(t) }}"
        ).render(t=MOMENT)
    assert (
        rendered == "2026年12月1日 15:52（北京时间）|2026年12月1日 15:52|北京时间|2026-12-01T15:52"
    )


def test_typed_times_are_read_in_the_editors_zone(app: Flask) -> None:
    """What an editor types is Beijing time, stored as UTC; impossible times are refused."""
    with app.test_request_context("/"):
        assert clock.parse_local("2026-12-01T15:30") == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
        assert clock.parse_local(" 2026-12-01 15:30:00 ") == datetime(
            2026, 12, 1, 7, 30, tzinfo=UTC
        )
        for wrong in ("", "tomorrow", "2026-13-01T10:00", "0001-01-01T01:00"):
            with pytest.raises(ValueError):
                clock.parse_local(wrong)
    # 02:30 on the night New York moves its clocks forward does not exist there.
    with pytest.raises(ValueError):
        clock.parse_local("2026-03-08T02:30", ZoneInfo("America/New_York"))
    assert clock.parse_local("2026-03-08T03:30", ZoneInfo("America/New_York")) == datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC
    )
