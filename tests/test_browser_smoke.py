"""The browser fixtures work: a real page in headless Chromium, at phone width, without overflow."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow


@pytest.mark.browser
def test_login_page_fits_a_phone(live_server: LiveServer, page: Any) -> None:
    """The editor login page loads in Chinese at 375 px and does not scroll sideways."""
    page.goto(live_server.url + "/editor/login")
    assert page.locator("h1").inner_text() == "编辑登录"
    assert horizontal_overflow(page) == 0
