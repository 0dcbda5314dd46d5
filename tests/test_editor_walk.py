"""Every editor page at 375 px, in Chinese and in English: nothing is wider than the phone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from issues.models import Issue
from subscribers.models import ImportJob
from subscribers.models import Subscriber
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import SEED
from tests.helpers import make_editor
from tests.test_campaign_pages import add_audience
from tests.test_campaign_pages import ready_issue
from tests.test_campaign_pages import running_campaign

EMAIL = "editor@newsletter.test"
PASSWORD = "correct horse battery"

# The innermost elements that reach past the viewport's right edge, to name in a failure.
_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
    && ![...e.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 0.5)
    && !e.closest('.table-scroll'))
  .slice(0, 3).map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 60))"""

# Table headings and badges on more than one line, and table cells squeezed to a character or
# two a line (what a table forced into 375 px without room to scroll looks like). Boxes of 1 px
# are visually hidden labels, read by screen readers only.
_SQUEEZED = """() => {
  const lines = e => { const r = document.createRange(); r.selectNodeContents(e);
    return new Set([...r.getClientRects()].filter(b => b.width > 1 && b.height > 1).map(b => Math.round(b.top))).size; };
  const bad = [];
  for (const e of document.querySelectorAll('table.data th, .status, .topic'))
    if (e.textContent.trim() && lines(e) > 1) bad.push('two lines: ' + e.textContent.trim());
  for (const e of document.querySelectorAll('table.data td')) {
    if (!e.getClientRects().length) continue;  // folded away, as a closed details' tables are
    const size = parseFloat(getComputedStyle(e).fontSize);
    const inner = e.clientWidth - parseFloat(getComputedStyle(e).paddingLeft) - parseFloat(getComputedStyle(e).paddingRight);
    if (e.textContent.trim().length > 3 && inner < 3 * size) bad.push('squeezed: ' + e.textContent.trim().slice(0, 30));
  }
  return bad.slice(0, 5);
}"""


# Words for programmers that editors' pages keep behind a 详情 fold, if anywhere (COPY_zh.md 4).
TECHNICAL = re.compile(r"Redis|Celery|SMTP|HTML|字节|令牌|队列|状态码|\btokens?\b|\bbytes\b", re.I)


def _page_words(page: Any) -> str:
    """The page's visible words, without the email a preview shows (its text part and frame)."""
    page.evaluate("document.querySelectorAll('pre.mail-text').forEach(e => e.hidden = true)")
    return str(page.inner_text("main"))


def _log_in(page: Any, url: str, lang: str) -> None:
    page.goto(f"{url}/editor/login?lang={lang}")
    assert horizontal_overflow(page) == 0, "login page"
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")


def _data(app: Flask, db: Session) -> dict[str, int]:
    """What the pages need: a ready issue with a running send, a draft, readers, a CSV import."""
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    draft = Issue(number=362, title="下一期草稿", status="draft", content_hash="0" * 64)
    db.add(draft)
    subscriber = db.query(Subscriber).order_by(Subscriber.id).first()
    assert subscriber is not None
    job = ImportJob(
        created_by=EMAIL,
        filename="名单-2026年年会签到表-very-long-file-name-without-spaces.csv",
        content="email,name\nreader@example.org,读者\n",
        consent_source="2026 年年会签到表",
        total_rows=1,
        valid_rows=1,
    )
    db.add(job)
    db.commit()
    return {
        "issue": issue.id,
        "draft": draft.id,
        "campaign": campaign_id,
        "subscriber": subscriber.id,
        "job": job.id,
    }


def _pages(ids: dict[str, int]) -> list[str]:
    """Every page an editor can open (GET), the data it shows made beforehand."""
    return [
        "/editor/",
        "/editor/account",
        "/editor/account/two-factor",
        "/editor/accounts",
        "/editor/issues/",
        f"/editor/issues/{ids['issue']}",
        f"/editor/issues/{ids['issue']}/draft",
        f"/editor/issues/{ids['draft']}",
        f"/editor/issues/{ids['draft']}/ready",
        "/editor/previews/",
        "/editor/previews/361",
        "/editor/previews/361/data,policy/digest/zh",
        "/editor/previews/361/companies,data,policy/full/en?width=phone",
        "/editor/campaigns/",
        f"/editor/campaigns/{ids['campaign']}",
        f"/editor/campaigns/new/{ids['issue']}",
        "/editor/subscribers/",
        "/editor/subscribers/?status=unsubscribed",
        f"/editor/subscribers/{ids['subscriber']}",
        "/editor/subscribers/import",
        f"/editor/subscribers/import/{ids['job']}",
    ]


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_editor_page_fits_a_phone(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """An administrator opens every console page on a 375 px phone: none scrolls sideways, no
    table is squeezed, and no word for programmers (Redis, SMTP, HTML, 字节, 令牌) is shown."""
    make_editor(db, role="admin")
    ids = _data(app, db)
    _log_in(page, live_server.url, lang)
    wide = {}
    for path in _pages(ids):
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert page.evaluate("document.documentElement.lang").startswith(lang), path
        if horizontal_overflow(page):
            wide[path] = page.evaluate(_WIDE)
        if squeezed := page.evaluate(_SQUEEZED):
            wide[path] = squeezed
        if technical := TECHNICAL.findall(_page_words(page)):
            wide[path] = technical
    # The import preview is reached by uploading a file, as an editor does.
    page.goto(live_server.url + "/editor/issues/")
    page.set_input_files("input[type=file]", str(SEED))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_url("**/import/preview")
    if horizontal_overflow(page):
        wide["/editor/issues/import/preview"] = page.evaluate(_WIDE)
    assert wide == {}
