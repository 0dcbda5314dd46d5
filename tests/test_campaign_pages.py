"""The send pages: who gets what, the send form, approval, test sends, progress and report."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns import control
from campaigns import tasks
from campaigns.models import Campaign
from campaigns.models import Delivery
from core import create_app
from core.db import utcnow
from issues import store
from issues.models import Issue
from mailer.models import OutboxMessage
from mailer.segments import Segment
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.campaign_helpers import reader
from tests.conftest import SmtpSink
from tests.conftest import wait_until
from tests.helpers import SEED
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

INDEX = "/editor/campaigns/"
# A space beside full-width punctuation inside a line of text (COPY_zh.md, punctuation).
LOOSE_PUNCTUATION = re.compile(r"[，。；：！？、（）“”] +[^\s<]|[^\s>] +[，。；：！？、（）“”]")
EDITIONS = [
    Segment(("policy",), "full", "zh"),
    Segment(("data", "policy"), "digest", "zh"),
    Segment(("companies",), "full", "en"),
]


# --- Arrangements -------------------------------------------------------------------------


def ready_issue(app: Flask, db: Session, status: str = "ready") -> Issue:
    """The seed issue 361, stored and marked ready (or left as a draft, or marked sent)."""
    result = store.store_issue(db, store.parse(SEED.read_bytes(), "seed.txt", app.config))
    db.commit()
    issue = result.issue
    if status != "draft":
        store.set_status(db, issue.id, "ready")
        db.commit()
    if status == "sent":
        db.execute(update(Issue).where(Issue.id == issue.id).values(status="sent"))
        db.commit()
    return issue


def add_reader(db: Session, email: str, segment: Segment, status: str = "active") -> Subscriber:
    subscriber = reader(email, segment, status)
    db.add(subscriber)
    db.commit()
    return subscriber


def add_audience(db: Session, per_edition: tuple[int, ...] = (3, 2, 1)) -> int:
    """Active readers in three editions, plus two pending and one blocked who count for nothing."""
    for number, segment in zip(per_edition, EDITIONS, strict=True):
        for index in range(number):
            add_reader(
                db,
                f"{segment.key.replace('/', '-').replace(',', '-')}-{index}@example.org",
                segment,
            )
    add_reader(db, "pending-1@example.org", EDITIONS[0], status="pending")
    add_reader(db, "pending-2@example.org", EDITIONS[0], status="pending")
    blocked = add_reader(db, "blocked@example.org", EDITIONS[0])
    db.add(Suppression(email_hash=blocked.email_hash, reason="manual"))
    db.commit()
    return sum(per_edition)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """What the pages hand to the workers, recorded instead of sent to Redis."""
    calls: dict[str, list[int]] = {"start": [], "batches": []}
    monkeypatch.setattr(tasks, "enqueue_start", calls["start"].append)
    monkeypatch.setattr(tasks, "enqueue_batches", calls["batches"].append)
    return calls


@pytest.fixture
def editor(client: FlaskClient, db: Session) -> FlaskClient:
    make_editor(db)
    log_in(client)
    return client


def running_campaign(app: Flask, db: Session, issue: Issue) -> int:
    """A campaign created and started directly: its ledger is planned, and no worker sends."""
    with app.app_context():
        admin = control.Editor("chief@newsletter.test", is_admin=True)
        campaign = control.create(db, issue.id, admin, app.config, lambda _id: None)
        db.commit()
        assert control.start(db, campaign.id, "chief@newsletter.test", app.config)
        db.commit()
        return campaign.id


def send_form(**fields: str) -> dict[str, str]:
    return {"when": "now", "confirm": "y", **fields}


def tidy(page: str) -> str:
    """The page, checked for spaces beside full-width punctuation in its visible text."""
    visible = re.sub(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", "", page, flags=re.S)
    assert LOOSE_PUNCTUATION.findall(visible) == []
    return page


def campaigns(db: Session) -> list[Campaign]:
    db.rollback()
    return list(db.scalars(select(Campaign).order_by(Campaign.id)))


def ledger(db: Session, campaign_id: int) -> dict[str, int]:
    db.rollback()
    rows = db.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    )
    return {str(status): int(count) for status, count in rows}


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [INDEX, f"{INDEX}new/1", f"{INDEX}1", f"{INDEX}1/progress.json", f"{INDEX}1/failures.csv"],
)
def test_pages_need_a_login(client: FlaskClient, path: str) -> None:
    """An anonymous visitor is sent to the login page from every send page."""
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/editor/login")


def test_navigation_and_home_card(app: Flask, editor: FlaskClient, db: Session) -> None:
    """The editor navigation and home have the sends, with an open send linked from the card."""
    assert "还没有发送过。" in tidy(editor.get(INDEX).get_data(as_text=True))
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    home = tidy(editor.get("/editor/").get_data(as_text=True))
    assert f'href="{INDEX}"' in home and ">发送任务<" in home
    assert f'href="{INDEX}{campaign_id}"' in home and "第 361 期" in home and "发送中" in home


# --- Who gets what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "zh",
            [
                "谁会收到什么",
                "共 6 位订阅者，分 3 个版本。",
                "等待确认的 2 位、已屏蔽的 1 个地址不计在内",
                "政策、数据 · 摘要版 · 中文",
                "企业 · 全文版 · English",
                "发送给 6 位订阅者",
                "发送测试邮件",
            ],
        ),
        (
            "en",
            [
                "Who gets what",
                "6 subscribers, in 3 editions.",
                "Not counted: 2 waiting for confirmation and 1 blocked addresses",
                "Policy, Data · Digest · 中文",
                "Companies · Full text · English",
                "Send to 6 subscribers",
                "Send a test email",
            ],
        ),
    ],
)
def test_who_gets_what(
    app: Flask, editor: FlaskClient, db: Session, lang: str, expected: list[str]
) -> None:
    """The page counts readers per edition (pending and blocked left out) and links previews."""
    issue = ready_issue(app, db)
    add_audience(db)
    response = editor.get(f"{INDEX}new/{issue.id}?lang={lang}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    if lang == "zh":
        tidy(page)
    for text in expected:
        assert text in page, text
    assert 'href="/editor/previews/361/data,policy/digest/zh"' in page
    assert 'name="csrf_token"' in page


def test_an_editor_sends_now(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """An editor's confirmed send is scheduled for now and handed to the workers after commit."""
    issue = ready_issue(app, db)
    add_audience(db)
    page = f"{INDEX}new/{issue.id}"
    response = editor.post(page, data=send_form(csrf_token=csrf_token(editor, page)))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    [campaign] = campaigns(db)
    assert response.headers["Location"] == f"{INDEX}{campaign.id}"
    assert (campaign.status, campaign.created_by) == ("scheduled", "editor@newsletter.test")
    assert campaign.new_subscribers is False and campaign.not_after is None
    assert enqueued["start"] == [campaign.id]
    shown = tidy(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert "第 361 期正在发送。" in shown and "发送进度" in shown
    assert '<meta http-equiv="refresh" content="5">' in shown and "campaign.js" in shown


def test_a_send_needs_the_csrf_token(app: Flask, editor: FlaskClient, db: Session) -> None:
    """Without the form's token nothing is created, whatever else the post says."""
    issue = ready_issue(app, db)
    add_audience(db)
    response = editor.post(f"{INDEX}new/{issue.id}", data=send_form())
    assert response.status_code == 400
    assert campaigns(db) == []


@pytest.mark.parametrize("action", ["pause", "resume", "cancel", "approve"])
def test_every_button_needs_the_csrf_token(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]], action: str
) -> None:
    """A button's post without the page's token changes nothing, whatever the status."""
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    assert editor.post(f"{INDEX}{campaign_id}/{action}").status_code == 400
    assert campaigns(db)[0].status == "running"
    test = editor.post(f"{INDEX}new/{issue.id}/test", data={"addresses": "a@example.org"})
    assert test.status_code == 400
    db.rollback()
    assert db.scalar(select(func.count(OutboxMessage.id))) == 0


def test_a_send_needs_the_confirmation(app: Flask, editor: FlaskClient, db: Session) -> None:
    """The form comes back with a plain reason when the number of readers was not confirmed."""
    issue = ready_issue(app, db)
    add_audience(db)
    page = f"{INDEX}new/{issue.id}"
    data = {"when": "now", "csrf_token": csrf_token(editor, page)}
    response = editor.post(page, data=data)
    assert response.status_code == 400
    assert "请勾选确认" in response.get_data(as_text=True)
    assert campaigns(db) == []


def beijing(moment: datetime) -> str:
    """``moment`` as a datetime-local field in Beijing holds it."""
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("send_at", "not_after", "message"),
    [
        (-120, -60, "“最晚开始”的时间已经过了。"),
        (120, 60, "“最晚开始”的时间必须晚于开始时间。"),
        (-120, None, "这个时间已经过了。"),
        ("tomorrow at nine", None, "时间格式不对"),
        (60, "2026-13-45T99:00", "时间格式不对"),
        ("", None, "请选择开始发送的日期和时间。"),
    ],
)
def test_bad_schedules_are_refused_in_plain_words(
    app: Flask,
    editor: FlaskClient,
    db: Session,
    enqueued: dict[str, list[int]],
    send_at: Any,
    not_after: Any,
    message: str,
) -> None:
    """A schedule in the past, a limit before the start, or garbage: a plain message, no send."""
    issue = ready_issue(app, db)
    add_audience(db)
    page = f"{INDEX}new/{issue.id}"

    def typed(value: Any) -> str:
        return beijing(utcnow() + timedelta(minutes=value)) if isinstance(value, int) else value

    data = send_form(when="later", send_at=typed(send_at), csrf_token=csrf_token(editor, page))
    if not_after is not None:
        data["not_after"] = typed(not_after)
    response = editor.post(page, data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert campaigns(db) == [] and enqueued["start"] == []


def test_a_schedule_is_read_in_beijing_time(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """08:00 typed is 00:00 UTC stored; the page says it back in Beijing time; nothing starts yet."""
    issue = ready_issue(app, db)
    add_audience(db)
    page = f"{INDEX}new/{issue.id}"
    data = send_form(
        when="later",
        send_at="2030-01-01T08:00",
        not_after="2030-01-01 20:30",
        csrf_token=csrf_token(editor, page),
    )
    response = editor.post(page, data=data)
    assert response.status_code == 302
    [campaign] = campaigns(db)
    assert campaign.send_at == datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
    assert campaign.not_after == datetime(2030, 1, 1, 12, 30, tzinfo=UTC)
    assert enqueued["start"] == []
    shown = tidy(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert "第 361 期将于 2030年1月1日 08:00（北京时间）发送。" in shown
    assert "如果到 2030年1月1日 20:30（北京时间）还没有开始，就不再发送。" in shown
    english = editor.get(response.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "Starts at 1 January 2030, 08:00 (Beijing time)." in english


def test_a_second_send_of_the_same_issue_is_refused(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """While a send is open the page links to it instead of offering a second one."""
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    page = editor.get(f"{INDEX}new/{issue.id}").get_data(as_text=True)
    assert "这一期已有一个尚未结束的发送任务（发送中）。" in page
    assert f'href="{INDEX}{campaign_id}"' in page and 'name="confirm"' not in page


def test_a_sent_issue_goes_to_new_subscribers(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """For an issue already sent the form sends only to readers who have not had it."""
    issue = ready_issue(app, db, status="sent")
    add_audience(db, (1, 1, 0))
    page = f"{INDEX}new/{issue.id}"
    shown = editor.get(page).get_data(as_text=True)
    assert "本期已发送。" in shown and "发送给新订阅者" in shown
    response = editor.post(page, data=send_form(csrf_token=csrf_token(editor, page)))
    assert response.status_code == 302
    [campaign] = campaigns(db)
    assert campaign.new_subscribers is True and enqueued["start"] == [campaign.id]


def test_a_draft_issue_offers_only_a_test(app: Flask, editor: FlaskClient, db: Session) -> None:
    """A draft cannot be sent yet; the page says so, and still offers the test send."""
    issue = ready_issue(app, db, status="draft")
    add_audience(db)
    page = editor.get(f"{INDEX}new/{issue.id}").get_data(as_text=True)
    assert "本期还是草稿" in page and 'name="confirm"' not in page and "发送测试邮件" in page


# --- Approval -----------------------------------------------------------------------------


@pytest.fixture
def approval_app(settings: dict[str, Any], app: Flask) -> Iterator[Flask]:
    """A second app on the same (emptied) database, with NEWSLETTER_SEND_APPROVAL on."""
    application = create_app({**settings, "TESTING": True, "SEND_APPROVAL": True})
    yield application
    application.extensions["db"].kw["bind"].dispose()


def test_an_editors_send_waits_for_another_administrator(
    approval_app: Flask, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """With approval on, an editor's send is a draft; only an administrator can let it go."""
    issue = ready_issue(approval_app, db)
    add_audience(db)
    make_editor(db)
    make_editor(db, "chief@newsletter.test", role="admin")
    editor, chief = approval_app.test_client(), approval_app.test_client()
    log_in(editor)
    log_in(chief, "chief@newsletter.test")
    page = f"{INDEX}new/{issue.id}"
    assert "发送前需要管理员批准。" in editor.get(page).get_data(as_text=True)
    response = editor.post(page, data=send_form(csrf_token=csrf_token(editor, page)))
    assert response.status_code == 302
    [campaign] = campaigns(db)
    assert (campaign.status, campaign.approved_by, enqueued["start"]) == ("draft", None, [])
    shown = tidy(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert "第 361 期等待管理员批准发送。" in shown
    assert "editor@newsletter.test 发起了这次发送，正在等待另一位管理员批准。" in shown
    assert f'action="{INDEX}{campaign.id}/approve"' not in shown
    own = f"{INDEX}{campaign.id}"
    refused = editor.post(f"{own}/approve", data={"csrf_token": csrf_token(editor, own)})
    assert "只有管理员可以批准发送。" in editor.get(refused.headers["Location"]).get_data(
        as_text=True
    )
    assert campaigns(db)[0].status == "draft"
    assert f'action="{INDEX}{campaign.id}/approve"' in chief.get(own).get_data(as_text=True)
    approved = chief.post(f"{own}/approve", data={"csrf_token": csrf_token(chief, own)})
    assert "已批准。" in chief.get(approved.headers["Location"]).get_data(as_text=True)
    [campaign] = campaigns(db)
    assert (campaign.status, campaign.approved_by) == ("scheduled", "chief@newsletter.test")
    assert enqueued["start"] == [campaign.id]


# --- Progress, controls and report --------------------------------------------------------


def test_progress_json_equals_the_ledger(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """Every number the page's script gets is counted from the deliveries."""
    issue = ready_issue(app, db)
    add_audience(db, (5, 4, 3))
    campaign_id = running_campaign(app, db, issue)
    ids = list(db.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign_id)))
    outcomes = {"sent": ids[:5], "failed": ids[5:7], "bounced": ids[7:8], "skipped": ids[8:9]}
    for status, chosen in outcomes.items():
        db.execute(
            update(Delivery)
            .where(Delivery.id.in_(chosen))
            .values(status=status, sent_at=utcnow() if status == "sent" else None)
        )
    db.commit()
    data = editor.get(f"{INDEX}{campaign_id}/progress.json").get_json()
    counts = ledger(db, campaign_id)
    assert data["total"] == sum(counts.values()) == 12
    for status in ("sent", "failed", "bounced", "skipped"):
        assert data[status] == counts[status] == len(outcomes[status])
    assert data["waiting"] == counts["queued"] == 3
    assert data["settled"] == 9 and data["percent"] == 75
    assert data["per_minute"] == 5 and data["eta"].endswith("（北京时间）")
    assert (data["status"], data["status_label"]) == ("running", "发送中")
    assert data["actions"] == ["pause", "cancel"]


def test_pause_resume_and_cancel(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """The buttons pause (with who did it), continue (batches enqueued) and cancel (how many missed)."""
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    page = f"{INDEX}{campaign_id}"
    token = csrf_token(editor, page)
    assert editor.post(f"{page}/pause").status_code == 400
    paused = editor.post(
        f"{page}/pause", data={"csrf_token": token}, headers={"Accept": "application/json"}
    ).get_json()
    assert (paused["ok"], paused["status_label"], paused["actions"]) == (
        True,
        "已暂停",
        ["resume", "cancel"],
    )
    assert paused["paused_reason"] == "editor@newsletter.test 暂停了发送。"
    shown = editor.get(page).get_data(as_text=True)
    assert "editor@newsletter.test 暂停了发送。" in shown
    again = editor.post(f"{page}/pause", data={"csrf_token": token})
    assert "这次发送现在的状态不能这样操作" in editor.get(again.headers["Location"]).get_data(
        as_text=True
    )
    editor.post(f"{page}/resume", data={"csrf_token": token})
    assert campaigns(db)[0].status == "running" and enqueued["batches"] == [campaign_id]
    cancelled = editor.post(f"{page}/cancel", data={"csrf_token": token})
    report = editor.get(cancelled.headers["Location"]).get_data(as_text=True)
    assert "已取消。有 6 位订阅者没有收到本期" in report
    assert ledger(db, campaign_id) == {"skipped": 6}
    assert "发送报告" in report and 'http-equiv="refresh"' not in report
    assert f'action="{page}/pause"' not in report and f'action="{page}/cancel"' not in report


def test_a_stored_reason_that_does_not_fit_its_message_is_shown_as_stored(
    app: Flask, editor: FlaskClient, db: Session
) -> None:
    """A pause reason missing its values (another version wrote it) does not break the page."""
    issue = ready_issue(app, db)
    add_audience(db)
    campaign_id = running_campaign(app, db, issue)
    reason = {"msgid": "Paused by %(email)s.", "params": {"editor": "chief@newsletter.test"}}
    db.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(status="paused", paused_reason=reason)
    )
    db.commit()
    response = editor.get(f"{INDEX}{campaign_id}")
    assert response.status_code == 200
    assert "Paused by %(email)s." in response.get_data(as_text=True)


def test_the_report_lists_failures_with_the_relays_words(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """A finished send shows each failure in plain words, the relay's reply behind 详情."""
    issue = ready_issue(app, db)
    add_audience(db, (2, 0, 0))
    campaign_id = running_campaign(app, db, issue)
    first, second = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
    first.status, first.smtp_code, first.smtp_reply = "sent", 250, "2.0.0 Ok"
    second.status, second.smtp_code, second.smtp_reply = "bounced", 550, "5.1.1 No such user"
    second.attempts, second.claimed_at = 1, utcnow()
    db.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="done"))
    db.commit()
    report = tidy(editor.get(f"{INDEX}{campaign_id}").get_data(as_text=True))
    assert "共 2 位订阅者：已送达邮件服务器 1 封，发送失败 0 封，退信 1 封，未发送 0 封。" in report
    assert "对方邮件服务器拒收。" in report
    assert "<summary>详情</summary><code>550 5.1.1 No such user</code>" in report
    assert f"{INDEX}{campaign_id}/failures.csv" in report
    english = editor.get(f"{INDEX}{campaign_id}?lang=en").get_data(as_text=True)
    assert "The receiving mail server refused it." in english and "Report" in english
    listing = tidy(editor.get(INDEX + "?lang=zh").get_data(as_text=True))
    assert "已完成" in listing and f'href="{INDEX}{campaign_id}"' in listing


def test_the_failures_file_is_safe_in_a_spreadsheet(
    app: Flask, editor: FlaskClient, db: Session, enqueued: dict[str, list[int]]
) -> None:
    """Addresses and replies that look like formulas get a quote; times are Beijing time."""
    issue = ready_issue(app, db)
    add_reader(db, "=cmd@example.org", EDITIONS[0])
    campaign_id = running_campaign(app, db, issue)
    row = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).one()
    row.status, row.smtp_code, row.attempts = "failed", 554, 1
    row.smtp_reply, row.claimed_at = '=HYPERLINK("http://evil")', datetime(2030, 1, 1, tzinfo=UTC)
    db.commit()
    response = editor.get(f"{INDEX}{campaign_id}/failures.csv")
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    header, line = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header[-1] == "time (Asia/Shanghai)"
    assert line == [
        "'=cmd@example.org",
        "failed",
        "1",
        "554",
        '\'=HYPERLINK("http://evil")',
        "2030-01-01 08:00:00",
    ]


# --- Test sends ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "message"),
    [
        (
            "a@example.org b@example.org c@example.org d@example.org e@example.org f@example.org",
            "最多 5 个地址。",
        ),
        ("a@example.org, not-an-address", "“not-an-address”不是邮箱地址"),
        ("", "请至少填写一个邮箱地址。"),
    ],
)
def test_a_test_send_refuses_bad_addresses(
    app: Flask, editor: FlaskClient, db: Session, addresses: str, message: str
) -> None:
    """Too many or unusable addresses: a plain message, and nothing is queued."""
    issue = ready_issue(app, db)
    add_audience(db)
    page = f"{INDEX}new/{issue.id}"
    data = {"addresses": addresses, "edition": "all", "csrf_token": csrf_token(editor, page)}
    response = editor.post(f"{page}/test", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(func.count(OutboxMessage.id))) == 0


def test_a_test_send_goes_through_the_worker(
    app: Flask, editor: FlaskClient, db: Session, celery_worker: Any, smtp_sink: SmtpSink
) -> None:
    """Each edition readers get goes to each address, its subject marked, its links the sample's."""
    issue = ready_issue(app, db)
    add_audience(db, (1, 1, 0))
    page = f"{INDEX}new/{issue.id}"
    data = {
        "addresses": "Tester@Example.org，second@example.org",
        "edition": "all",
        "csrf_token": csrf_token(editor, page),
    }
    response = editor.post(f"{page}/test", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.rollback()
    rows = list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert len(rows) == 4 and {row.kind for row in rows} == {"campaign_test"}
    editions = {(tuple(row.params["topics"]), row.params["format"], row.locale) for row in rows}
    assert editions == {(("policy",), "full", "zh"), (("data", "policy"), "digest", "zh")}
    assert {row.params["issue_id"] for row in rows} == {issue.id}
    assert {row.to_address for row in rows} == {"Tester@example.org", "second@example.org"}

    def all_sent() -> bool:
        db.rollback()
        return bool(db.scalar(select(func.count()).where(OutboxMessage.status == "sent")) == 4)

    wait_until(all_sent, timeout=60)
    subjects = sorted(str(message["Subject"]) for message in smtp_sink.to("second@example.org"))
    assert len(subjects) == 2 and all(subject.startswith("[测试] ") for subject in subjects)
    [email, _other] = smtp_sink.to("Tester@example.org")
    assert "Tester@example.org" in str(email["To"]) and email["List-Unsubscribe"]
    html = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "sample-not-a-real-token" in html
    shown = editor.get(page).get_data(as_text=True)
    assert "最近的测试邮件" in shown and "已送达邮件服务器" in shown


def test_a_ready_issue_links_to_its_send(app: Flask, client: FlaskClient, db: Session) -> None:
    """The issue page of a ready issue leads to who gets what and the send form."""
    make_editor(db)
    log_in(client)
    issue = ready_issue(app, db)
    page = client.get(f"/editor/issues/{issue.id}").get_data(as_text=True)
    assert f'href="/editor/campaigns/new/{issue.id}"' in page and "发送本期" in page
