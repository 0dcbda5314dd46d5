"""What editors see of bounces and complaints: the send's panel (counts, rates, warnings near
what providers tolerate), the subscriber's page (when, what the server said), the home card."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.models import Delivery
from inbound.events import record
from subscribers import service
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_campaign_pages import tidy
from tests.test_editor_walk import _log_in
from tests.test_inbound_events import _event
from tests.test_inbound_events import _sent_campaign

REASON = "550 5.1.1 <r0@qq.com>: Recipient address rejected: User unknown in virtual mailbox table"


@pytest.fixture
def admin(client: FlaskClient, db: Session) -> FlaskClient:
    make_editor(db, role="admin")
    log_in(client)
    return client


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _bounces_section(page: str) -> str:
    found = re.search(r'<section class="card" id="bounces">.*?</section>', page, re.S)
    assert found is not None, "no bounces panel"
    return found.group(0)


def _small_send_with_trouble(app: Flask, db: Session) -> list[Delivery]:
    """Six readers reached; one hard bounce, one complaint, one soft bounce, one mailed
    unsubscribe and one auto-reply come back."""
    rows = _sent_campaign(app, db, readers=6)
    record(
        db,
        app.config,
        _event("hard_bounce", "h", delivery_id=rows[0].id, reason=REASON, status="5.1.1"),
    )
    record(
        db,
        app.config,
        _event("complaint", "c", source="arf", delivery_id=rows[1].id, reason="abuse"),
    )
    record(
        db,
        app.config,
        _event("soft_bounce", "s", delivery_id=rows[2].id, reason="452 mailbox full"),
    )
    record(
        db,
        app.config,
        _event(
            "unsubscribe",
            "u",
            source="mailto",
            subscriber_id=rows[3].subscriber_id,
            reason="unsubscribe",
        ),
    )
    record(db, app.config, _event("auto_reply", "a", delivery_id=rows[4].id, reason="我在休假"))
    db.commit()
    return rows


def test_the_send_report_shows_counts_rates_and_warnings(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """A send of six with one bounce and one complaint: the panel counts each kind, gives both
    rates (16.67 %) and warns that both are past what providers accept, in Chinese and English."""
    rows = _small_send_with_trouble(app, db)
    page = tidy(admin.get(f"/editor/campaigns/{rows[0].campaign_id}").get_data(as_text=True))
    panel = _text(_bounces_section(page))
    assert "退信与投诉" in panel
    # Changed in the review of issue 11: those are subscribers sent to, not confirmed delivered.
    assert "发送对象 6 位订阅者" in panel and "已送达" not in panel
    assert "退信 1（16.67%）" in panel and "投诉（标记为垃圾邮件） 1（16.67%）" in panel
    assert "暂时退信 1" in panel and "通过邮件退订 1" in panel and "自动回复 1" in panel
    assert "有 16.67% 把邮件标记为垃圾邮件，超过了 Gmail 和 Yahoo 能接受的 0.3%。" in panel
    assert "本次发送有 16.67% 退信，超过了邮箱服务商能接受的 2%。" in panel
    assert "User unknown in virtual mailbox table" in panel and "已屏蔽此地址" in panel
    assert "r0@qq.com" in panel and "北京时间" in panel
    english = _text(
        _bounces_section(
            admin.get(f"/editor/campaigns/{rows[0].campaign_id}?lang=en").get_data(as_text=True)
        )
    )
    assert "Bounces and complaints" in english and "1 (16.67%)" in english
    assert "Sent to 6 subscribers" in english and "reached" not in english.lower()
    assert "more than the 0.3% Gmail and Yahoo accept" in english
    assert "more than the 2% mailbox providers accept" in english


def test_a_large_send_warns_when_complaints_near_the_limit(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """700 reached and one complaint (0.14 %): the panel warns that complaints are close to
    0.3 %, and says nothing about bounces (none)."""
    rows = _sent_campaign(app, db, readers=700)
    record(
        db,
        app.config,
        _event("complaint", "c", source="arf", delivery_id=rows[0].id, reason="abuse"),
    )
    db.commit()
    panel = _text(
        _bounces_section(
            admin.get(f"/editor/campaigns/{rows[0].campaign_id}").get_data(as_text=True)
        )
    )
    assert "有 0.14% 把邮件标记为垃圾邮件，已接近 Gmail 和 Yahoo 能接受的 0.3%。" in panel
    assert "超过" not in panel and "邮箱服务商" not in panel
    assert "退信 0（0.00%）" in panel


def test_no_panel_before_the_send_reaches_anyone(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """A send planned but not yet sent has no bounces panel; the page still opens."""
    rows = _sent_campaign(app, db, readers=3)
    db.execute(update(Delivery).values(status="queued", sent_at=None))
    db.commit()
    response = admin.get(f"/editor/campaigns/{rows[0].campaign_id}")
    assert response.status_code == 200
    assert 'id="bounces"' not in response.get_data(as_text=True)


def test_the_subscribers_page_says_when_and_what_the_server_said(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """The bounced reader's page lists the bounce: when, of which issue, what we did, and the
    receiving server's words; a reader nothing came back about has no such panel."""
    rows = _small_send_with_trouble(app, db)
    page = tidy(admin.get(f"/editor/subscribers/{rows[0].subscriber_id}").get_data(as_text=True))
    panel = _text(_bounces_section(page))
    assert "退信：地址无法收信" in panel and "已屏蔽此地址" in panel and "第 361 期" in panel
    assert "2026年12月1日 16:00" in panel and "5.1.1 " + REASON in panel
    quiet = admin.get(f"/editor/subscribers/{rows[5].subscriber_id}").get_data(as_text=True)
    assert 'id="bounces"' not in quiet


def test_the_editor_home_counts_what_came_back(app: Flask, admin: FlaskClient, db: Session) -> None:
    """The home card counts the last 30 days: two addresses blocked (a bounce, a complaint),
    and each kind."""
    _small_send_with_trouble(app, db)
    card = _text(tidy(admin.get("/editor/").get_data(as_text=True)))
    assert "退信与投诉" in card and "2 个地址已屏蔽" in card
    assert "退信 1 封" in card and "投诉 1 次" in card
    assert "通过邮件退订 1 人" in card and "暂时退信 1 封" in card and "最近 30 天" in card


def test_the_home_card_counts_reports_that_matched_nobody_apart(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """Reports that matched nobody (a stranger's address, a forged Message-ID) are not counted
    as the subscribers' bounces and complaints; the card says how many there were apart
    (review of issue 11)."""
    rows = _small_send_with_trouble(app, db)
    forged = str(rows[0].message_id).replace("@", "0@")
    for kind, key, fields in [
        ("hard_bounce", "stranger", {"address": "nobody@nowhere.example"}),
        ("hard_bounce", "forged", {"message_id": forged}),
        ("complaint", "stranger-spam", {"address": "nobody@nowhere.example"}),
    ]:
        assert record(db, app.config, _event(kind, key, **fields)).effect == "unmatched"
    db.commit()
    card = _text(tidy(admin.get("/editor/").get_data(as_text=True)))
    assert "2 个地址已屏蔽" in card
    assert "退信 1 封" in card and "投诉 1 次" in card and "暂时退信 1 封" in card
    assert "另有 3 份退信或投诉报告找不到对应的订阅者，未作处理。" in card
    english = _text(tidy(admin.get("/editor/?lang=en").get_data(as_text=True)))
    assert "3 more reports matched no subscriber and changed nothing." in english


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_panels_fit_a_phone(
    app: Flask, live_server: LiveServer, page: Any, db: Session, lang: str
) -> None:
    """On a 375 px phone the send's and the subscriber's pages with their bounces panels do not
    scroll sideways, and the server's words open from their fold."""
    make_editor(db, role="admin")
    rows = _small_send_with_trouble(app, db)
    _log_in(page, live_server.url, lang)
    for path in (
        f"/editor/campaigns/{rows[0].campaign_id}",
        f"/editor/subscribers/{rows[0].subscriber_id}",
    ):
        page.goto(live_server.url + path)
        page.click("#bounces details.reply summary")
        assert page.is_visible("#bounces details.reply code"), path
        assert horizontal_overflow(page) == 0, path


def test_an_erased_readers_address_and_server_words_are_not_shown(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """The bounce quoted the reader's address: the consent note leaves it out from the start,
    and once the reader is erased neither the send's panel nor their page shows it."""
    rows = _small_send_with_trouble(app, db)
    note = db.scalars(
        select(ConsentEvent.note).where(ConsentEvent.subscriber_id == rows[0].subscriber_id)
    ).one()
    assert note is not None and "User unknown" in note and "@" not in note
    reader = db.get(Subscriber, rows[0].subscriber_id)
    assert reader is not None
    service.erase(db, reader, service.Consent(source="editor"), block=True)
    db.commit()
    for path in (f"/editor/campaigns/{rows[0].campaign_id}", f"/editor/subscribers/{reader.id}"):
        panel = _bounces_section(admin.get(path).get_data(as_text=True))
        assert "r0@qq.com" not in panel and "User unknown" not in panel, path
        assert "退信：地址无法收信" in panel


def test_a_later_bounce_reads_as_sent_back_in_the_report(
    app: Flask, admin: FlaskClient, db: Session
) -> None:
    """A delivery the relay took (250) and a bounce report later marked bounced is listed
    among the send's problems as sent back later, not as an unexpected answer."""
    rows = _small_send_with_trouble(app, db)
    db.execute(update(Delivery).values(smtp_code=250, smtp_reply="2.0.0 Ok: queued as 4F3A"))
    db.commit()
    page = _text(admin.get(f"/editor/campaigns/{rows[0].campaign_id}").get_data(as_text=True))
    assert "邮件服务器已接收，收件方随后退回了这封邮件。" in page
    assert "邮件服务器的回答不寻常" not in page
