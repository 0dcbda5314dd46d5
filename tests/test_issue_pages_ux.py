"""The issue pages as an editor meets them in a browser: confirmations, status names, messages."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from issues.models import Article
from issues.models import Issue
from mailer.models import OutboxMessage
from tests.conftest import LiveServer
from tests.helpers import csrf_token
from tests.helpers import log_in as log_in_client
from tests.helpers import make_editor
from tests.test_campaign_pages import ready_issue

WORDS = {
    "zh": {
        "mark": "设为已就绪……",
        "ask": "把第 361 期设为已就绪并发布到网站？",
        "confirm": "设为已就绪并发布到网站",
        "done": "第 361 期已就绪，并已发布到网站。",
        "ready": "已就绪（已发布到网站）",
        "draft": "草稿",
    },
    "en": {
        "mark": "Mark ready…",
        "ask": "Mark issue 361 ready and publish it?",
        "confirm": "Mark ready and publish to the website",
        "done": "Issue 361 is ready and published to the website.",
        "ready": "Ready, published to the website",
        "draft": "Draft",
    },
}


def log_in(page: Any, url: str, lang: str) -> None:
    page.goto(f"{url}/editor/login?lang={lang}")
    page.fill("input[name=email]", "editor@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")


def status_of(db: Session, issue_id: int) -> str:
    db.expire_all()
    issue = db.get(Issue, issue_id)
    db.rollback()
    assert issue is not None
    return issue.status


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_mark_ready_asks_first_because_it_publishes(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """A draft's 设为已就绪 button leads to a question first; only its answer publishes the issue."""
    words = WORDS[lang]
    make_editor(db)
    issue = ready_issue(app, db, status="draft")
    log_in(page, live_server.url, lang)
    page.goto(f"{live_server.url}/editor/issues/{issue.id}")
    page.get_by_role("button", name=words["mark"]).click()
    page.wait_for_url(f"**/editor/issues/{issue.id}/ready")
    assert page.locator("h1").inner_text() == words["ask"]
    assert status_of(db, issue.id) == "draft"
    assert app.test_client().get("/issues/361").status_code == 404
    page.get_by_role("button", name=words["confirm"]).click()
    page.wait_for_url(f"**/editor/issues/{issue.id}")
    assert words["done"] in page.inner_text("main")
    assert status_of(db, issue.id) == "ready"
    assert app.test_client().get("/issues/361").status_code == 200


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_issue_status_has_one_name_on_every_page(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """A ready issue is called 已就绪（已发布到网站） on the issue list, its page, previews and sends."""
    words = WORDS[lang]
    make_editor(db)
    issue = ready_issue(app, db)
    log_in(page, live_server.url, lang)
    for path in (
        "/editor/issues/",
        f"/editor/issues/{issue.id}",
        "/editor/previews/",
        "/editor/campaigns/",
    ):
        page.goto(live_server.url + path)
        badges = page.locator(".status-ready").all_inner_texts()
        assert badges and set(badges) == {words["ready"]}, path


SAVING = {
    "zh": {
        "edit": "修改主题、标题和摘要",
        "save": "保存文章",
        "saved": "第 5 篇文章已保存。",
        "empty": "标题不能为空。",
        "read": "查看全文",
        "edit_title": "修改本期标题",
        "save_title": "保存标题",
        "title_saved": "标题已保存。",
    },
    "en": {
        "edit": "Edit topics, title and summary",
        "save": "Save article",
        "saved": "Article 5 is saved.",
        "empty": "The title cannot be empty.",
        "read": "Read the full text",
        "edit_title": "Edit the issue's title",
        "save_title": "Save the title",
        "title_saved": "The title is saved.",
    },
}


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_saving_an_article_says_so_beside_it_and_so_does_a_refusal(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """The 5th article saved: the message is in that article's card; an empty title is refused there."""
    words = SAVING[lang]
    make_editor(db)
    issue = ready_issue(app, db, status="draft")
    log_in(page, live_server.url, lang)
    page.goto(f"{live_server.url}/editor/issues/{issue.id}")
    fifth = page.locator("article.issue-article").nth(4)
    fifth.get_by_text(words["edit"]).click()
    fifth.locator("textarea").fill("新摘要。")
    fifth.get_by_role("button", name=words["save"]).click()
    page.wait_for_load_state()
    fifth = page.locator("article.issue-article").nth(4)
    assert fifth.locator(".saved").inner_text() == words["saved"]
    assert page.locator(".saved").count() == 1
    assert words["saved"] not in page.locator(".flash").all_inner_texts()
    fifth.get_by_text(words["edit"]).click()
    fifth.locator("input[name=title]").fill("   ")
    fifth.get_by_role("button", name=words["save"]).click()
    page.wait_for_load_state()
    fifth = page.locator("article.issue-article").nth(4)
    assert fifth.locator("[role=alert]").inner_text() == words["empty"]
    assert page.locator("[role=alert]").count() == 1


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_articles_full_text_can_be_read_and_the_issue_title_corrected(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """A draft's page: each article's whole text unfolds, and the issue's title can be changed."""
    words = SAVING[lang]
    make_editor(db)
    issue = ready_issue(app, db, status="draft")
    log_in(page, live_server.url, lang)
    page.goto(f"{live_server.url}/editor/issues/{issue.id}")
    first = page.locator("article.issue-article").first
    text = first.locator("details.article-text")
    assert not text.locator("p").first.is_visible()
    text.get_by_text(words["read"]).click()
    body = text.inner_text()
    blocks = issue.sections[0].articles[0].blocks
    last_paragraph = [block for block in blocks if block["type"] == "paragraph"][-1]
    assert last_paragraph["text"][-30:] in body
    assert "产业链合作奖" in body  # the article's table is there too
    page.get_by_text(words["edit_title"]).click()
    page.fill("#issue-title-field", "天堂之芯（更正）")
    page.get_by_role("button", name=words["save_title"]).click()
    page.wait_for_load_state()
    assert "天堂之芯（更正）" in page.locator("h1").inner_text()
    assert words["title_saved"] in page.inner_text("main")
    db.expire_all()
    assert db.get(Issue, issue.id).title == "天堂之芯（更正）"  # type: ignore[union-attr]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("lang", "delivered"), [("zh", "已送达邮件服务器"), ("en", "delivered to the mail server")]
)
def test_a_test_email_reads_delivered_with_the_servers_reply_folded(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str, delivered: str
) -> None:
    """A test email the relay took with 250: the home page and the send page say 已送达邮件服务器,
    and the reply shows only in 详情."""
    make_editor(db)
    issue = ready_issue(app, db)
    reply = "2.0.0 Ok: queued as 4F2A1"
    params = {"issue_id": issue.id, "topics": ["policy"], "format": "full"}
    for kind, extra in (("test", {}), ("campaign_test", params)):
        db.add(
            OutboxMessage(
                kind=kind,
                to_address="check@example.org",
                locale="zh",
                params=extra,
                status="sent",
                smtp_code=250,
                smtp_reply=reply,
            )
        )
    db.commit()
    log_in(page, live_server.url, lang)
    for path in ("/editor/", f"/editor/campaigns/new/{issue.id}"):
        page.goto(live_server.url + path)
        row = page.locator("table.data tbody tr", has_text="check@example.org")
        assert delivered in row.inner_text(), path
        assert "250" not in row.inner_text() and reply not in row.inner_text(), path
        row.locator("details summary").click()
        assert reply in row.inner_text(), path


@pytest.mark.browser
@pytest.mark.parametrize(
    ("lang", "names"), [("zh", ["政策", "企业", "数据"]), ("en", ["Policy", "Companies", "Data"])]
)
def test_topics_are_listed_in_the_configured_order(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str, names: list[str]
) -> None:
    """An article of all three topics (stored by key name: data, companies, policy) reads
    政策、企业、数据 on the issue page, and the previews' 政策、数据 edition too."""
    make_editor(db)
    issue = ready_issue(app, db)
    first = issue.sections[0].articles[0]
    db.execute(
        update(Article).where(Article.id == first.id).values(topics=("data", "companies", "policy"))
    )
    db.commit()
    log_in(page, live_server.url, lang)
    page.goto(f"{live_server.url}/editor/issues/{issue.id}")
    badges = page.locator(f"#article-{first.id} ul.topics li").all_inner_texts()
    assert badges == names
    page.goto(f"{live_server.url}/editor/previews/361")
    cells = page.locator("table.segments tbody tr td:first-child").all_inner_texts()
    together = "、".join([names[0], names[2]]) if lang == "zh" else f"{names[0]}, {names[2]}"
    assert together in cells
    backwards = "、".join([names[2], names[0]]) if lang == "zh" else f"{names[2]}, {names[0]}"
    assert backwards not in cells


@pytest.mark.parametrize(
    ("status", "title", "message"),
    [
        ("draft", "   ", "标题不能为空。"),
        ("draft", "长" * 201, "标题太长"),
        ("ready", "新标题", "第 361 期已就绪，并已发布到网站"),
        ("draft", "新\x00标题", "有无法显示的字符"),
    ],
    ids=["empty", "too-long", "ready", "nul"],
)
def test_a_refused_title_is_explained_beside_it_and_nothing_is_saved(
    app: Flask, client: FlaskClient, db: Session, status: str, title: str, message: str
) -> None:
    """An empty or over-long title, one with a NUL (PostgreSQL refuses it), or any title of a
    published issue, is refused on the page."""
    make_editor(db)
    issue = ready_issue(app, db, status=status)
    log_in_client(client)
    token = csrf_token(client, f"/editor/issues/{issue.id}")
    response = client.post(
        f"/editor/issues/{issue.id}/title", data={"title": title, "csrf_token": token}
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Issue, issue.id).title == "天堂之芯"  # type: ignore[union-attr]
