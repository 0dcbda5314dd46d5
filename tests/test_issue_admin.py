"""The editor's issue pages: login, upload → preview → confirm, re-tagging and corrections."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.db import utcnow
from issues import store as issues
from issues.admin import UPLOAD_KEY
from issues.models import Article
from issues.models import Issue
from issues.models import PendingUpload
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import SEED
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

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


def upload(client: FlaskClient, data: bytes, name: str = "issue.txt", query: str = "") -> Any:
    token = csrf_token(client, INDEX)
    return client.post(
        "/editor/issues/import" + query,
        data={"csrf_token": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def pending_uploads(db: Session) -> list[PendingUpload]:
    """Uploads waiting for confirmation, oldest first."""
    db.rollback()
    return list(db.scalars(select(PendingUpload).order_by(PendingUpload.id)))


def truncated_seed(seed_bytes: bytes) -> bytes:
    """The seed cut inside its 25th article: the last ten articles are missing."""
    return "\n".join(seed_bytes.decode().splitlines()[:800]).encode()


@pytest.mark.parametrize(
    "path",
    [
        INDEX,
        "/editor/issues/import/preview",
        "/editor/issues/1",
        "/editor/issues/1/ready",
        "/editor/issues/1/draft",
    ],
)
def test_pages_need_a_login(client: FlaskClient, path: str) -> None:
    """An anonymous visitor is sent to the login page from every issue page."""
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/editor/login")


def test_upload_preview_confirm(
    app: Flask, editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """Uploading shows the structure and stores nothing; confirming stores the issue once."""
    response = upload(editor, seed_bytes, "seed.txt")
    assert response.status_code == 302
    assert response.headers["Location"] == "/editor/issues/import/preview"
    assert article_count(db) == 0
    [waiting] = pending_uploads(db)
    assert (waiting.filename, waiting.data) == ("seed.txt", seed_bytes)
    with editor.session_transaction() as cookie:
        assert cookie[UPLOAD_KEY] == waiting.token  # the token only: no bytes, no name
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
    assert pending_uploads(db) == []
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


@pytest.mark.parametrize(
    ("lang", "reason", "foreign"),
    [
        ("zh", "此文件未导入：没有找到目录（一行“目录”", "No table of contents"),
        ("en", "This file was not imported: No table of contents (a line 目录", "没有找到目录"),
    ],
)
def test_a_file_that_is_not_an_issue_is_refused_on_the_page(
    editor: FlaskClient, db: Session, lang: str, reason: str, foreign: str
) -> None:
    """A structureless file is refused with the reason in the page's language; nothing waits."""
    response = upload(editor, "只是一段文字，没有目录。\n".encode() * 3, query=f"?lang={lang}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert reason in page and foreign not in page
    assert "Traceback" not in page
    assert pending_uploads(db) == []
    preview = editor.get("/editor/issues/import/preview")
    assert preview.status_code == 302 and preview.headers["Location"] == INDEX
    assert article_count(db) == 0


def test_warnings_of_a_truncated_file_are_shown_translated(
    editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """A cut-off file's preview and stored issue name each missing article in the page's language."""
    missing = "目录中列在“芯资讯”栏目下的“2023未来数商大会在杭州开幕”在正文中未找到。"
    assert upload(editor, truncated_seed(seed_bytes)).status_code == 302
    preview = editor.get("/editor/issues/import/preview").get_data(as_text=True)
    assert "警告 (10)" in preview and missing in preview
    assert "目录中列在“芯伙伴”栏目下的“浙江省半导体行业协会”在正文中未找到。" in preview
    assert "was not found" not in preview
    token = csrf_token(editor, "/editor/issues/import/preview")
    confirmed = editor.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert confirmed.status_code == 302
    issue = db.scalars(select(Issue)).one()
    assert issue.warnings[0] == {
        "msgid": "“%(title)s”, listed in the table of contents under %(section)s, was not found "
        "in the text.",
        "params": {"title": "2023未来数商大会在杭州开幕", "section": "芯资讯"},
    }
    page = editor.get(confirmed.headers["Location"]).get_data(as_text=True)
    assert missing in page and "was not found" not in page
    english = editor.get(f"/editor/issues/{issue.id}?lang=en").get_data(as_text=True)
    assert (
        "“2023未来数商大会在杭州开幕”, listed in the table of contents under 芯资讯, was not "
        "found in the text." in english
    )


def test_plain_warnings_of_older_imports_are_still_shown(
    editor: FlaskClient, db: Session, stored: Issue
) -> None:
    """Warnings stored as plain sentences (before message ids were kept) show as they were."""
    stored.warnings = ["Shortened to 300 characters: 100% 国产…"]
    db.commit()
    page = editor.get(f"/editor/issues/{stored.id}").get_data(as_text=True)
    assert "警告 (1)" in page and "Shortened to 300 characters: 100% 国产…" in page


def test_another_editor_cannot_confirm_an_upload(
    app: Flask, editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """An upload belongs to its editor: another editor holding its token sees and stores nothing."""
    assert upload(editor, seed_bytes).status_code == 302
    [waiting] = pending_uploads(db)
    other = app.test_client()
    make_editor(db, email="other@newsletter.test")
    log_in(other, email="other@newsletter.test")
    with other.session_transaction() as cookie:
        cookie[UPLOAD_KEY] = waiting.token
    preview = other.get("/editor/issues/import/preview")
    assert preview.status_code == 302 and preview.headers["Location"] == INDEX
    token = csrf_token(other, INDEX)
    response = other.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == INDEX
    assert article_count(db) == 0
    assert [row.token for row in pending_uploads(db)] == [waiting.token]
    token = csrf_token(editor, INDEX)
    mine = editor.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert mine.status_code == 302 and mine.headers["Location"] != INDEX
    assert article_count(db) == 34


def test_a_new_upload_replaces_the_last_and_cancel_forgets_it(
    editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """An editor has at most one waiting upload; cancelling deletes it and stores nothing."""
    assert upload(editor, truncated_seed(seed_bytes), "first.txt").status_code == 302
    assert upload(editor, seed_bytes, "second.txt").status_code == 302
    assert [row.filename for row in pending_uploads(db)] == ["second.txt"]
    token = csrf_token(editor, "/editor/issues/import/preview")
    cancelled = editor.post("/editor/issues/import/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 302
    assert pending_uploads(db) == []
    assert article_count(db) == 0
    with editor.session_transaction() as cookie:
        assert UPLOAD_KEY not in cookie


def test_a_used_upload_cannot_be_confirmed_again(
    editor: FlaskClient, db: Session, seed_bytes: bytes
) -> None:
    """Replaying a confirmation with the upload's token finds nothing: the row went with the import."""
    assert upload(editor, seed_bytes).status_code == 302
    [waiting] = pending_uploads(db)
    token = csrf_token(editor, "/editor/issues/import/preview")
    assert (
        editor.post("/editor/issues/import/confirm", data={"csrf_token": token}).status_code == 302
    )
    with editor.session_transaction() as cookie:
        cookie[UPLOAD_KEY] = waiting.token
    again = editor.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert again.status_code == 302 and again.headers["Location"] == INDEX
    assert "上传的文件已过期" in editor.get(INDEX).get_data(as_text=True)
    assert pending_uploads(db) == []
    assert article_count(db) == 34


def test_uploads_expire_after_an_hour(editor: FlaskClient, db: Session, seed_bytes: bytes) -> None:
    """An upload over an hour old cannot be confirmed, and the next upload deletes every such one."""
    assert upload(editor, seed_bytes, "late.txt").status_code == 302
    [late] = pending_uploads(db)
    late.created_at = utcnow() - timedelta(minutes=61)
    other = make_editor(db, email="other@newsletter.test")
    for minutes, name in ((120, "abandoned.txt"), (30, "recent.txt")):
        db.add(
            PendingUpload(
                token=name.split(".")[0].ljust(32, "x"),
                editor_id=other.id,
                filename=name,
                data=b"...",
                created_at=utcnow() - timedelta(minutes=minutes),
            )
        )
    db.commit()
    preview = editor.get("/editor/issues/import/preview")
    assert preview.status_code == 302 and preview.headers["Location"] == INDEX
    token = csrf_token(editor, INDEX)
    confirm = editor.post("/editor/issues/import/confirm", data={"csrf_token": token})
    assert confirm.status_code == 302 and confirm.headers["Location"] == INDEX
    assert article_count(db) == 0
    assert upload(editor, seed_bytes, "fresh.txt").status_code == 302
    assert [row.filename for row in pending_uploads(db)] == ["recent.txt", "fresh.txt"]


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


def test_a_sent_issue_cannot_be_corrected_or_retagged(
    editor: FlaskClient, db: Session, stored: Issue
) -> None:
    """A sent issue's page offers no edit form, and a forced post changes nothing (issue 13.5)."""
    stored.status = "sent"
    db.commit()
    page = editor.get(f"/editor/issues/{stored.id}").get_data(as_text=True)
    assert 'name="topics"' not in page and 'name="title"' not in page
    assert "本期已发给读者" in page
    article = stored.sections[2].articles[0]
    before = (article.title, article.summary, article.topics)
    forced = edit(editor, stored, article, topics=["policy"], title="存档更正", summary="改")
    assert forced.status_code == 400 and "内容保持读者收到时的样子" in forced.get_data(as_text=True)
    untagged = edit(editor, stored, article, retag="", title="存档更正", summary=article.summary)
    assert untagged.status_code == 400
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and (fresh.title, fresh.summary, fresh.topics) == before


def test_a_ready_issue_is_edited_only_after_a_confirmed_move_to_draft(
    editor: FlaskClient, app: Flask, db: Session, stored: Issue
) -> None:
    """A ready issue's page has no edit form; back to draft asks first, saying it leaves the
    website, and only the confirmation's button moves it; then the edit is saved."""
    db.execute(update(Issue).values(status="ready"))
    db.commit()
    show = f"/editor/issues/{stored.id}"
    page = editor.get(show).get_data(as_text=True)
    assert 'name="title"' not in page and f"{show}/draft" in page
    article = stored.sections[2].articles[0]
    forced = edit(editor, stored, article, title="悄悄改掉的标题", summary=article.summary)
    assert forced.status_code == 400 and "请先改回草稿" in forced.get_data(as_text=True)
    token = csrf_token(editor, show)
    asked = editor.post(f"{show}/status", data={"status": "draft", "csrf_token": token})
    assert asked.status_code == 303 and asked.headers["Location"] == f"{show}/draft"
    confirmation = editor.get(f"{show}/draft").get_data(as_text=True)
    assert "立即从网站上撤下" in confirmation and 'name="confirmed" value="yes"' in confirmation
    assert app.test_client().get(f"/issues/{stored.number}").status_code == 200
    editor.post(f"{show}/status", data={"status": "draft", "confirmed": "yes", "csrf_token": token})
    assert app.test_client().get(f"/issues/{stored.number}").status_code == 404
    saved = edit(editor, stored, article, title="改过的标题", summary=article.summary)
    assert saved.status_code == 302
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and fresh.title == "改过的标题"


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
    article.locator("details.edit > summary").click()
    article.locator("input[value=policy]").check()
    article.locator("button[type=submit]").click()
    page.wait_for_selector("text=篇文章已保存。")
    db.rollback()
    fifth = db.scalars(select(Article).where(Article.number == 5)).one()
    assert "policy" in fifth.topics


def test_marking_ready_publishes_to_the_archive_and_draft_hides_it(
    client: FlaskClient, app: Flask, db: Session, stored: Issue
) -> None:
    """Ready puts the issue in the public archive; back to draft takes it out; sent stays sent."""
    make_editor(db, "chief@newsletter.test", role="admin")
    log_in(client, "chief@newsletter.test")
    editor = client
    public = app.test_client()
    assert public.get(f"/issues/{stored.number}").status_code == 404
    token = csrf_token(editor, f"/editor/issues/{stored.id}")
    response = editor.post(
        f"/editor/issues/{stored.id}/status",
        data={"status": "ready", "confirmed": "yes", "csrf_token": token},
    )
    assert response.status_code == 302
    assert public.get(f"/issues/{stored.number}").status_code == 200
    editor.post(
        f"/editor/issues/{stored.id}/status",
        data={"status": "draft", "confirmed": "yes", "csrf_token": token},
    )
    assert public.get(f"/issues/{stored.number}").status_code == 404
    refused = editor.post(
        f"/editor/issues/{stored.id}/status",
        data={"status": "sent", "csrf_token": token},
        follow_redirects=True,
    )
    assert "这里只能把本期设为草稿或已就绪" in refused.get_data(as_text=True)
    db.execute(update(Issue).values(status="sent"))
    db.commit()
    editor.post(
        f"/editor/issues/{stored.id}/status",
        data={"status": "draft", "confirmed": "yes", "csrf_token": token},
    )
    db.expire_all()
    assert db.get(Issue, stored.id).status == "sent"  # type: ignore[union-attr]


def test_a_plain_editor_can_publish_and_unpublish(
    editor: FlaskClient, db: Session, stored: Issue
) -> None:
    """Editors import, check, mark ready and send (issue 9 moved publishing to editors)."""
    page = editor.get(f"/editor/issues/{stored.id}").get_data(as_text=True)
    assert f"/editor/issues/{stored.id}/status" in page
    token = csrf_token(editor, f"/editor/issues/{stored.id}")
    for before, asked in (("draft", "ready"), ("ready", "draft")):
        db.execute(update(Issue).values(status=before))
        db.commit()
        response = editor.post(
            f"/editor/issues/{stored.id}/status",
            data={"status": asked, "confirmed": "yes", "csrf_token": token},
        )
        assert response.status_code == 302
        db.expire_all()
        assert db.get(Issue, stored.id).status == asked  # type: ignore[union-attr]


def post_paths(issue: Issue) -> list[str]:
    """Every form the issue pages post to."""
    article = issue.sections[0].articles[0]
    return [
        "/editor/issues/import",
        "/editor/issues/import/confirm",
        "/editor/issues/import/cancel",
        f"/editor/issues/{issue.id}/articles/{article.id}",
        f"/editor/issues/{issue.id}/status",
        f"/editor/issues/{issue.id}/title",
    ]


def test_every_form_needs_a_login_and_the_csrf_token(
    client: FlaskClient, db: Session, stored: Issue, seed_bytes: bytes
) -> None:
    """Anonymous posts go to the login page; an admin's posts without the token are refused."""
    fields = {
        "status": "ready",
        "confirmed": "yes",
        "title": "伪造",
        "topics": "policy",
        "retag": "1",
    }
    anonymous = {**fields, "csrf_token": csrf_token(client, "/editor/login")}
    for path in post_paths(stored):
        response = client.post(path, data=anonymous)
        assert response.status_code == 302 and "/editor/login" in response.headers["Location"]
    make_editor(db, "chief@newsletter.test", role="admin")
    log_in(client, "chief@newsletter.test")
    assert upload(client, seed_bytes).status_code == 302
    for path in post_paths(stored):
        files = {"file": (io.BytesIO(seed_bytes), "x.txt")} if path.endswith("import") else {}
        response = client.post(path, data={**fields, **files}, content_type="multipart/form-data")
        assert response.status_code == 400, path
    db.expire_all()
    fresh = db.get(Issue, stored.id)
    assert fresh is not None and fresh.status == "draft"
    assert fresh.sections[0].articles[0].title != "伪造" and fresh.title != "伪造"
    assert len(pending_uploads(db)) == 1


@pytest.mark.parametrize("big", ["2147483648", "99999999999999999999"])
def test_ids_beyond_the_integer_range_are_not_found(
    client: FlaskClient, db: Session, stored: Issue, big: str
) -> None:
    """Addresses with ids no row can have are a 404 page, never a database error."""
    make_editor(db, "chief@newsletter.test", role="admin")
    log_in(client, "chief@newsletter.test")
    token = csrf_token(client, INDEX)
    article = stored.sections[0].articles[0]
    assert client.get(f"/editor/issues/{big}").status_code == 404
    for path in (
        f"/editor/issues/{big}/status",
        f"/editor/issues/{stored.id}/articles/{big}",
        f"/editor/issues/{big}/articles/{article.id}",
    ):
        response = client.post(path, data={"csrf_token": token, "status": "ready", "title": "x"})
        assert response.status_code == 404, path


def test_an_issue_number_out_of_range_is_explained_not_stored(
    editor: FlaskClient, db: Session
) -> None:
    """A Markdown number beyond any integer column gets a warning and a refusal, not a 500."""
    text = "---\nnumber: 99999999999999999999\ntitle: 小刊\nperiod: 2024-03\n---\n\n## 文章\n\n正文。\n"
    assert upload(editor, text.encode(), "big.md").status_code == 302
    page = editor.get("/editor/issues/import/preview")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "不在 1 到 99999 之间" in html and "Import this issue" not in html
    assert 'action="/editor/issues/import/confirm"' not in html
    assert article_count(db) == 0


def test_html_in_titles_is_shown_as_text(client: FlaskClient, app: Flask, db: Session) -> None:
    """Markup in an issue's titles and summaries is escaped on the preview, the issue page
    and the public archive."""
    make_editor(db, "chief@newsletter.test", role="admin")
    log_in(client, "chief@newsletter.test")
    evil = "<img src=x onerror=alert(1)>"
    text = (
        f"---\nnumber: 7\ntitle: 小刊{evil}\nperiod: 2024-03\n---\n\n# 栏目{evil}\n\n"
        f"## 标题{evil}\n\n正文{evil}。\n"
    )
    assert upload(client, text.encode(), "evil.md").status_code == 302
    pages = [client.get("/editor/issues/import/preview").get_data(as_text=True)]
    token = csrf_token(client, "/editor/issues/import/preview")
    confirmed = client.post("/editor/issues/import/confirm", data={"csrf_token": token})
    issue_page = confirmed.headers["Location"]
    pages.append(client.get(issue_page).get_data(as_text=True))
    pages.append(client.get(INDEX).get_data(as_text=True))
    issue_id = int(issue_page.rsplit("/", 1)[1])
    client.post(
        f"{issue_page}/status", data={"status": "ready", "confirmed": "yes", "csrf_token": token}
    )
    assert db.get(Issue, issue_id).status == "ready"  # type: ignore[union-attr]
    public = app.test_client()
    pages += [
        public.get("/issues/7").get_data(as_text=True),
        public.get("/issues/7/1").get_data(as_text=True),
    ]
    for html in pages:
        assert "<img" not in html
    assert all("&lt;img src=x onerror=alert(1)&gt;" in html for html in pages)
