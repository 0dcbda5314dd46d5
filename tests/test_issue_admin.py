"""The editor's issue pages: login, upload → preview → confirm, re-tagging and corrections."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer import issues
from mailer.models import Article
from mailer.models import Issue
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_ad8e7aff219fd574.txt"
INDEX = "/editor/issues/"


@pytest.fixture(scope="module")
def seed_bytes() -> bytes:
    """The real issue 361; its absence is a failure, not a skip."""
    assert SEED.is_file(), f"the seed issue is missing: {SEED}"
    return SEED.read_bytes()


@pytest.fixture
def editor(client: FlaskClient, db: Session) -> FlaskClient:
    """The client, logged in as an editor."""
    make_editor(db)
    log_in(client)
    return client


@pytest.fixture
def stored(app: Flask, db: Session, seed_bytes: bytes) -> Issue:
    """The seed, imported as a draft."""
    result = issues.store_issue(db, issues.parse(seed_bytes, "seed.txt", app.config))
    db.commit()
    return result.issue


def article_count(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Article)) or 0


def upload(client: FlaskClient, data: bytes, name: str = "issue.txt") -> Any:
    token = csrf_token(client, INDEX)
    return client.post(
        "/editor/issues/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def pending_uploads(app: Flask) -> set[Path]:
    """Uploads waiting for confirmation (the folder is shared, so tests compare before/after)."""
    return set((Path(app.instance_path) / "import-uploads").glob("*.upload"))


@pytest.mark.parametrize("path", [INDEX, "/editor/issues/import/preview", "/editor/issues/1"])
def test_pages_need_a_login(client: FlaskClient, path: str) -> None:
    """An anonymous visitor is sent to the login page from every issue page."""
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/editor/login")


def test_upload_preview_confirm(
    app: Flask, editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """Uploading shows the structure and stores nothing; confirming stores the issue once."""
    before = pending_uploads(app)
    response = upload(editor, seed_bytes, "seed.txt")
    assert response.status_code == 302
    assert response.headers["Location"] == "/editor/issues/import/preview"
    assert article_count(db) == 0
    preview = editor.get("/editor/issues/import/preview").get_data(as_text=True)
    assert "6 个栏目，34 篇文章" in preview
    assert "导入后将保存为一期新的草稿。" in preview
    assert "2022年中国集成电路进出口分析" in preview and "芯伙伴" in preview
    token = csrf_token(editor, "/editor/issues/import/preview")
    confirmed = editor.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert confirmed.status_code == 302
    issue = db.scalars(select(Issue)).one()
    assert confirmed.headers["Location"] == f"/editor/issues/{issue.id}"
    assert article_count(db) == 34
    assert pending_uploads(app) <= before
    page = editor.get(confirmed.headers["Location"]).get_data(as_text=True)
    assert "第 361 期已保存为草稿。" in page
    assert "2023年杭州市重点项目公布" in page and "企业" in page and "爱集微" in page
    listing = editor.get(INDEX).get_data(as_text=True)
    assert f'href="/editor/issues/{issue.id}">361</a>' in listing


def test_preview_says_a_draft_will_be_replaced(
    editor: FlaskClient, stored: Issue, seed_bytes: bytes
) -> None:
    """A revised file for a stored draft is previewed with a warning that it replaces it."""
    revised = seed_bytes.replace("共颁发技术创新奖10项".encode(), "共颁发技术创新奖11项".encode())
    assert upload(editor, revised).status_code == 302
    preview = editor.get("/editor/issues/import/preview").get_data(as_text=True)
    assert "第 361 期已作为草稿存在" in preview
    assert "导入这一期" in preview
    token = csrf_token(editor, INDEX)
    assert (
        editor.post("/editor/issues/import/cancel", data={"csrf_token": token}).status_code == 302
    )


def test_a_file_that_is_not_an_issue_is_refused_on_the_page(
    app: Flask, editor: FlaskClient, db: Session
) -> None:
    """A structureless file is refused with the reason on the page; nothing waits or is stored."""
    before = pending_uploads(app)
    response = upload(editor, "只是一段文字，没有目录。\n".encode() * 3)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "此文件未导入" in page and "table of contents" in page
    assert "Traceback" not in page
    assert pending_uploads(app) <= before
    preview = editor.get("/editor/issues/import/preview")
    assert preview.status_code == 302 and preview.headers["Location"] == INDEX
    assert article_count(db) == 0


def test_another_editor_cannot_confirm_an_upload(
    app: Flask, editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """An upload belongs to the editor's session: a second editor's confirm stores nothing."""
    assert upload(editor, seed_bytes).status_code == 302
    other = app.test_client()
    make_editor(db, email="other@newsletter.test")
    log_in(other, email="other@newsletter.test")
    token = csrf_token(other, INDEX)
    response = other.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == INDEX
    assert article_count(db) == 0
    token = csrf_token(editor, INDEX)
    mine = editor.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert mine.status_code == 302 and mine.headers["Location"] != INDEX
    assert article_count(db) == 34


def test_cancel_forgets_the_upload(
    app: Flask, editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """Cancelling removes the waiting file and stores nothing."""
    before = pending_uploads(app)
    assert upload(editor, seed_bytes).status_code == 302
    assert len(pending_uploads(app) - before) == 1
    token = csrf_token(editor, "/editor/issues/import/preview")
    assert (
        editor.post("/editor/issues/import/cancel", data={"csrf_token": token}).status_code == 302
    )
    assert pending_uploads(app) <= before
    assert article_count(db) == 0


def test_an_oversized_upload_gets_the_friendly_page(editor: FlaskClient, db: Session) -> None:
    """A file over the size limit is answered with the 413 page, not an error trace."""
    response = upload(editor, b"x" * (6 * 1024 * 1024))
    assert response.status_code == 413
    assert "文件太大" in response.get_data(as_text=True)
    assert article_count(db) == 0


def edit(client: FlaskClient, issue: Issue, article: Article, **fields: Any) -> Any:
    fields.setdefault("csrf_token", csrf_token(client, f"/editor/issues/{issue.id}"))
    fields.setdefault("retag", "1")
    return client.post(f"/editor/issues/{issue.id}/articles/{article.id}", data=fields)


def test_retag_and_correct(editor: FlaskClient, db: Session, stored: Issue) -> None:
    """Ticking topics and changing the title and summary saves all three."""
    article = stored.sections[2].articles[0]
    response = edit(
        editor, stored, article, topics=["policy", "data"], title="新标题", summary="新摘要。"
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/editor/issues/{stored.id}#article-{article.id}"
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None
    assert (fresh.topics, fresh.title, fresh.summary) == (("data", "policy"), "新标题", "新摘要。")
    page = editor.get(f"/editor/issues/{stored.id}").get_data(as_text=True)
    assert f"第 {article.number} 篇文章已保存。" in page and "新标题" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topics": ["policy", "sports"], "title": "新标题"}, "sports 不是可选主题"),
        ({"topics": ["policy"], "title": "   "}, "标题不能为空。"),
    ],
    ids=["unknown-topic", "empty-title"],
)
def test_invalid_changes_are_refused_and_nothing_is_saved(
    editor: FlaskClient, db: Session, stored: Issue, fields: dict[str, Any], message: str
) -> None:
    """A bad topic or an empty title is explained on the page, and no part of the change is kept."""
    article = stored.sections[2].articles[0]
    before = (article.topics, article.title, article.summary)
    response = edit(editor, stored, article, summary="不应保存的摘要。", **fields)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert "不应保存的摘要。" in page  # the editor's input is kept on the page to fix
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and (fresh.topics, fresh.title, fresh.summary) == before


def test_a_sent_issue_can_be_corrected_but_not_retagged(
    editor: FlaskClient, db: Session, stored: Issue
) -> None:
    """A sent issue's page offers no topic boxes; a title correction is still saved."""
    stored.status = "sent"
    db.commit()
    page = editor.get(f"/editor/issues/{stored.id}").get_data(as_text=True)
    assert 'name="topics"' not in page and "主题不能再修改" in page
    article = stored.sections[2].articles[0]
    token = csrf_token(editor, f"/editor/issues/{stored.id}")
    response = editor.post(
        f"/editor/issues/{stored.id}/articles/{article.id}",
        data={"csrf_token": token, "title": "存档更正", "summary": article.summary},
    )
    assert response.status_code == 302
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and (fresh.title, fresh.topics) == ("存档更正", article.topics)
    forced = edit(editor, stored, article, topics=["policy"], title="存档更正")
    assert forced.status_code == 400 and "主题不能再修改" in forced.get_data(as_text=True)


def test_a_change_without_csrf_token_is_refused(
    editor: FlaskClient, db: Session, stored: Issue
) -> None:
    """A form post that did not come from our page is refused and changes nothing."""
    article = stored.sections[2].articles[0]
    response = edit(editor, stored, article, csrf_token="", topics=["policy"], title="伪造")
    assert response.status_code == 400
    assert "此表单已过期" in response.get_data(as_text=True)
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and fresh.title == article.title


def test_an_article_of_another_issue_is_not_found(
    editor: FlaskClient, stored: Issue, db: Session
) -> None:
    """Editing an article through the wrong issue's address is a 404."""
    article = stored.sections[0].articles[0]
    response = editor.post(
        f"/editor/issues/{stored.id + 1}/articles/{article.id}",
        data={"csrf_token": csrf_token(editor, INDEX), "title": "x", "retag": "1"},
    )
    assert response.status_code == 404


@pytest.mark.browser
def test_import_and_retag_in_the_browser(
    live_server: LiveServer, page: Any, db: Session, seed_bytes: bytes, tmp_path: Path
) -> None:
    """On a phone-sized screen an editor uploads, confirms and re-tags without any overflow."""
    make_editor(db)
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "editor@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.goto(live_server.url + INDEX)
    seed = tmp_path / "seed.txt"
    seed.write_bytes(seed_bytes)
    page.set_input_files("input[type=file]", str(seed))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_url("**/import/preview")
    assert horizontal_overflow(page) == 0
    page.click("text=导入这一期")
    page.wait_for_selector("text=第 361 期已保存为草稿。")
    assert horizontal_overflow(page) == 0
    article = page.locator("article.issue-article").nth(4)
    article.locator("summary").click()
    article.locator("input[value=policy]").check()
    article.locator("button[type=submit]").click()
    page.wait_for_selector("text=篇文章已保存。")
    db.rollback()
    fifth = db.scalars(select(Article).where(Article.number == 5)).one()
    assert "policy" in fifth.topics
