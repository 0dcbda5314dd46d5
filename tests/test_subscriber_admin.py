"""The editor's subscriber pages: who may see them, the list, one subscriber's history and actions."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import OutboxMessage
from subscribers import service
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from subscribers.models import Suppression
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh
from tests.test_subscribe import path_of

LIST = "/editor/subscribers/"


def _admin(client: FlaskClient, db: Session) -> None:
    make_editor(db, "admin@newsletter.test", role="admin")
    log_in(client, "admin@newsletter.test")


def _post(client: FlaskClient, subscriber: Subscriber, action: str, **data: object) -> str:
    page = f"{LIST}{subscriber.id}"
    response = client.post(
        f"{page}/{action}", data={"csrf_token": csrf_token(client, page), **data}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_only_administrators_reach_the_subscriber_pages(client: FlaskClient, db: Session) -> None:
    """Anonymous visitors go to the login page; a plain editor gets 403; an admin sees the list."""
    assert client.get(LIST).status_code == 302
    assert "/editor/login" in client.get(LIST).headers["Location"]
    make_editor(db, "editor@newsletter.test", role="editor")
    log_in(client, "editor@newsletter.test")
    assert client.get(LIST).status_code == 403
    assert client.get(LIST + "export.csv").status_code == 403
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    _admin(client, db)
    page = client.get(LIST).get_data(as_text=True)
    assert "订阅者" in page and f'href="{LIST}"' in client.get("/editor/").get_data(as_text=True)


def test_search_filters_and_pages(client: FlaskClient, db: Session) -> None:
    """Search matches address, name or organisation; filters combine; pages hold 50 rows."""
    _admin(client, db)
    add_subscriber(db, "wang@example.com", name="王芳", organisation="芯源公司", member=True)
    add_subscriber(db, "li@example.com", status="unsubscribed", topics=("data",), format="digest")
    add_subscriber(db, "under_score@example.com", topics=("policy",))
    for n in range(52):
        add_subscriber(db, f"bulk{n:02d}@example.org", topics=("companies",))

    def emails(query: str) -> set[str]:
        page = client.get(LIST + query).get_data(as_text=True)
        return {e for e in ("wang@", "li@", "under_score@", "bulk00@", "bulk51@") if e in page}

    assert emails("?q=芯源") == {"wang@"}
    assert emails("?q=_score") == {"under_score@"}  # _ is a letter here, not a wildcard
    assert emails("?status=unsubscribed") == {"li@"}
    assert emails("?topic=data&format=digest") == {"li@"}
    assert emails("?topic=policy") == {"wang@", "under_score@"}
    assert emails("?member=yes") == {"wang@"}
    assert emails("?status=nonsense&q=wang") == {"wang@"}
    first = client.get(LIST + "?q=bulk").get_data(as_text=True)
    assert "找到 52 位订阅者" in first and "第 1 / 2 页" in first and "bulk51@" in first
    second = client.get(LIST + "?q=bulk&page=2").get_data(as_text=True)
    assert "bulk01@" in second and "bulk00@" in second and "bulk51@" not in second


def test_marking_a_member_sets_digest_and_is_recorded(client: FlaskClient, db: Session) -> None:
    """Flagging a member stores the organisation, switches to digests and writes the history."""
    _admin(client, db)
    subscriber = add_subscriber(db, "m@example.com", format="full")
    page = _post(client, subscriber, "member", member="y", organisation="芯片协会成员单位")
    # The history says it as a sentence (issue 12): who changed what.
    assert (
        "已保存" in page
        and "由 admin@newsletter.test 修改会员信息，单位：— → 芯片协会成员单位" in page
    )
    after = fresh(db, "m@example.com")
    assert after is not None
    assert (after.member, after.organisation, after.format) == (True, "芯片协会成员单位", "digest")
    event = db.scalars(select(ConsentEvent)).one()
    assert (event.source, event.actor) == ("editor", "admin@newsletter.test")
    assert event.changes["format"] == ["full", "digest"]


def test_manual_unsubscribe_and_block(client: FlaskClient, db: Session) -> None:
    """An editor can stop mail to a subscriber, and block the address against later signups."""
    _admin(client, db)
    subscriber = add_subscriber(db, "u@example.com")
    assert "已退订" in _post(client, subscriber, "unsubscribe")
    assert fresh(db, "u@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    _post(client, subscriber, "suppress")
    assert db.scalars(select(Suppression.reason)).all() == ["manual"]
    assert (
        service.subscribe(
            db,
            "u@example.com",
            service.Choices(("policy",), "full", "zh"),
            service.Consent("web"),
            lambda _id: None,
        )
        == "blocked"
    )


def test_erase_removes_personal_data_and_keeps_the_block(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Erasing blanks the person's data everywhere, keeps an anonymous history and the suppression."""
    _admin(client, db)
    subscriber = add_subscriber(db, "gone@example.com", name="张三", organisation="某单位")
    unsubscribe_path = path_of(app, "unsubscribe", subscriber)
    db.add(
        ConsentEvent(
            subscriber_id=subscriber.id,
            action="subscribe",
            source="web",
            ip="203.0.113.9",
            user_agent="Browser",
            changes={"name": [None, "张三"], "status": [None, "pending"]},
        )
    )
    db.add(
        OutboxMessage(kind="confirm", to_address="gone@example.com", params={"subscriber_id": 1})
    )
    db.commit()
    refused = _post(client, subscriber, "erase", block="y")
    assert "请勾选以确认删除" in refused and fresh(db, "gone@example.com") is not None
    page = _post(client, subscriber, "erase", block="y", sure="y")
    assert "个人数据已删除" in page and "张三" not in page and "gone@example.com" not in page
    db.expire_all()
    row = db.get(Subscriber, subscriber.id)
    assert row is not None and row.email_hash is None and row.name is None
    assert row.email.endswith("@erased.invalid") and row.erased_at is not None
    events = db.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert [e.action for e in events] == ["subscribe", "erase"]
    assert events[0].ip is None and events[0].user_agent is None
    assert events[0].changes["name"] == ["(erased)", "(erased)"]
    assert db.scalars(select(OutboxMessage.to_address)).all() == ["erased@erased.invalid"]
    assert db.scalars(select(Suppression.email_hash)).all() == [
        service.email_hash("gone@example.com")
    ]
    assert client.get(unsubscribe_path).status_code == 400  # old links die with the data
    export = client.get(LIST + "export.csv").get_data(as_text=True)
    assert "erased" not in export and len(export.strip().splitlines()) == 1


def test_hostile_list_parameters_get_a_page_not_an_error(client: FlaskClient, db: Session) -> None:
    """Edited URLs (url_for's own keywords, a NUL, a huge page) get the list, never a 500."""
    _admin(client, db)
    for n in range(52):
        add_subscriber(db, f"bulk{n:02d}@example.org")
    for query in ("?endpoint=x", "?_method=DELETE", "?q=%00", "?q=a%0Ab", "?page=zz"):
        assert client.get(LIST + query).status_code == 200, query
        assert client.get(LIST + "export.csv" + query).status_code == 200, query
    assert "请只使用文字、数字和标点" in client.get(LIST + "?q=%00").get_data(as_text=True)
    far = client.get(LIST + "?page=99999999999999999999999")
    assert far.status_code == 200 and "第 2 / 2 页" in far.get_data(as_text=True)
    crafted = client.get(LIST + "?_external=1&_scheme=javascript&_anchor=x").get_data(as_text=True)
    assert "javascript:" not in crafted and "#x" not in crafted and 'rel="next"' in crafted


def test_ids_beyond_the_integer_range_are_not_found(client: FlaskClient, db: Session) -> None:
    """A subscriber or import id too large for the database is a 404, not a database error."""
    _admin(client, db)
    huge = "99999999999999999999999"
    assert client.get(f"{LIST}{huge}").status_code == 404
    assert client.get(f"{LIST}import/{huge}").status_code == 404
    token = csrf_token(client, LIST)
    assert client.post(f"{LIST}{huge}/unsubscribe", data={"csrf_token": token}).status_code == 404


def test_an_erased_subscriber_gets_no_personal_data_back(client: FlaskClient, db: Session) -> None:
    """After an erase the member form cannot store an organisation on the anonymous row again."""
    _admin(client, db)
    subscriber = add_subscriber(db, "gone@example.com", organisation="某单位")
    _post(client, subscriber, "erase", block="y", sure="y")
    _post(client, subscriber, "member", member="y", organisation="新单位")
    db.expire_all()
    row = db.get(Subscriber, subscriber.id)
    assert row is not None and row.organisation is None and not row.member
    assert [e.action for e in db.scalars(select(ConsentEvent))] == ["erase"]


def test_an_erased_subscriber_cannot_be_edited_either(client: FlaskClient, db: Session) -> None:
    """After an erase the edit form, like the member form, says so and stores no name again."""
    _admin(client, db)
    subscriber = add_subscriber(db, "gone@example.com", name="王芳")
    _post(client, subscriber, "erase", block="y", sure="y")
    form = {"name": "李四", "topics": ["policy"], "format": "full", "language": "zh"}
    for action, data in (("edit", form), ("member", {"member": "y", "organisation": "新单位"})):
        page = _post(client, subscriber, action, **data)
        assert "该订阅者的个人数据已被删除。" in page, action
    db.expire_all()
    row = db.get(Subscriber, subscriber.id)
    assert row is not None and row.name is None and row.organisation is None
    assert [e.action for e in db.scalars(select(ConsentEvent))] == ["erase"]


def test_every_editor_action_needs_the_csrf_token(client: FlaskClient, db: Session) -> None:
    """Each POST of the subscriber pages without its CSRF token is refused and changes nothing."""
    _admin(client, db)
    subscriber = add_subscriber(db, "a@example.com")
    for action in ("member", "unsubscribe", "suppress", "erase"):
        response = client.post(f"{LIST}{subscriber.id}/{action}", data={"sure": "y", "member": "y"})
        assert response.status_code == 400, action
    assert client.post(f"{LIST}import", data={"consent_source": "xxxxx"}).status_code == 400
    after = fresh(db, "a@example.com")
    assert after is not None and (after.status, after.member) == ("active", False)
    assert (
        db.scalars(select(ConsentEvent)).all() == [] and db.scalars(select(Suppression)).all() == []
    )
