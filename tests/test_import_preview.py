"""The import preview in a browser: what to check before an issue file is stored, in zh and en."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from issues import store
from issues.models import Issue
from tests.conftest import LiveServer
from tests.helpers import SEED
from tests.helpers import make_editor
from tests.test_issue_pages_ux import log_in

WORDS = {
    "zh": {
        "import": "导入这一期",
        "unsourced": "没有注明来源的文章（7 篇）",
        "cover": "第 3—190 行，在第一篇文章之前（封面、目录）：“总第361期 | 2023/02月刊”",
        "back": "在最后一篇文章之后（封底、声明）",
        "unchanged": "没有变化。",
        "changes": "导入会改动草稿中的",
        "title": "#5 改过的标题：标题",
        "added": "：新文件中新增",
    },
    "en": {
        "import": "Import this issue",
        "unsourced": "Articles without a source (7)",
        "cover": (
            "lines 3–190, before the first article (cover, table of contents): "
            "“总第361期 | 2023/02月刊”"
        ),
        "back": "after the last article (back cover, notices)",
        "unchanged": "Unchanged.",
        "changes": "What importing changes in the draft",
        "title": "#5 改过的标题: title",
        "added": ": new in the file",
    },
}


def upload(page: Any, url: str, data: bytes) -> None:
    page.goto(url + "/editor/issues/")
    page.set_input_files(
        "input[type=file]", {"name": "issue.txt", "mimeType": "text/plain", "buffer": data}
    )
    page.click("form[enctype] button[type=submit]")
    page.wait_for_url("**/import/preview")


def store_draft(app: Flask, db: Session, data: bytes) -> Issue:
    result = store.store_issue(db, store.parse(data, "seed.txt", app.config))
    db.commit()
    return result.issue


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_preview_says_what_to_check_with_the_button_at_both_ends(
    live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """The seed's preview: import buttons above and below the articles, the unsourced and the skipped."""
    words = WORDS[lang]
    make_editor(db)
    log_in(page, live_server.url, lang)
    upload(page, live_server.url, SEED.read_bytes())
    buttons = page.get_by_role("button", name=words["import"], exact=True)
    assert buttons.count() == 2
    articles = page.locator("article.issue-article")
    assert articles.count() == 34
    top = buttons.first.bounding_box()["y"]
    bottom = buttons.last.bounding_box()["y"]
    assert top < articles.first.bounding_box()["y"] < articles.last.bounding_box()["y"] < bottom
    unsourced = page.inner_text("#unsourced")
    assert words["unsourced"] in unsourced and "#21 中国半导体行业协会严正声明" in unsourced
    skipped = page.inner_text("#skipped")
    assert words["cover"] in skipped and words["back"] in skipped


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_identical_file_says_unchanged_and_offers_no_import(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """The file of a stored issue uploaded again: 没有变化, a link to the issue, no import button."""
    make_editor(db)
    issue = store_draft(app, db, SEED.read_bytes())
    log_in(page, live_server.url, lang)
    upload(page, live_server.url, SEED.read_bytes())
    assert WORDS[lang]["unchanged"] in page.inner_text("#unchanged")
    assert page.get_by_role("button", name=WORDS[lang]["import"]).count() == 0
    assert page.locator(f"#unchanged a[href='/editor/issues/{issue.id}']").count() == 1


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_replacing_a_draft_lists_what_it_changes(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """A draft from a cut file whose 5th title an editor corrected, replaced by the whole seed."""
    words = WORDS[lang]
    make_editor(db)
    cut = "\n".join(SEED.read_text().splitlines()[:800]).encode()
    issue = store_draft(app, db, cut)
    fifth = next(a for s in issue.sections for a in s.articles if a.number == 5)
    store.correct_article(db, fifth.id, title="改过的标题", summary=fifth.summary)
    db.commit()
    log_in(page, live_server.url, lang)
    upload(page, live_server.url, SEED.read_bytes())
    changes = page.inner_text("#lost-changes")
    assert words["changes"] in changes
    assert words["title"] in changes
    assert "#34 " in changes and words["added"] in changes
    assert page.get_by_role("button", name=words["import"], exact=True).count() == 2
