"""Editor sessions live on the server: logging out, everywhere or by an admin, really ends them."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.sessions import EditorSession
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

CHIEF = "chief@newsletter.test"


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _replay(app: Flask, value: str) -> FlaskClient:
    """A second browser holding a copy of a saved session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", value, domain="localhost")
    return thief


def test_a_cookie_saved_before_logout_opens_nothing(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A session cookie copied before POST /editor/logout no longer opens /editor/ nor the subscriber export."""
    make_editor(db, email=CHIEF, role="admin")
    log_in(client, email=CHIEF)
    saved = _cookie(client)
    assert _replay(app, saved).get("/editor/subscribers/export.csv").status_code == 200
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    thief = _replay(app, saved)
    assert thief.get("/editor/").status_code == 302
    export = thief.get("/editor/subscribers/export.csv")
    assert export.status_code == 302 and "/editor/login" in export.headers["Location"]
    assert db.scalar(select(func.count()).select_from(EditorSession)) == 0


def test_the_cookie_holds_only_a_session_id(app: Flask, client: FlaskClient, db: Session) -> None:
    """The session row keeps a hash, the browser and the IP; the account page lists it with an end button."""
    make_editor(db)
    log_in(client)
    row = db.scalars(select(EditorSession)).one()
    assert len(row.token_hash) == 64 and row.ip == "127.0.0.1"
    page = client.get("/editor/account").get_data(as_text=True)
    assert f"/editor/account/sessions/{row.id}/end" in page and "本浏览器" in page


def test_log_out_everywhere_ends_every_session(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Two browsers logged in; "log out everywhere" in one ends both, and the other's end button works alone."""
    make_editor(db)
    log_in(client)
    phone, laptop = app.test_client(), app.test_client()
    log_in(phone)
    log_in(laptop)
    phone_row = sorted(db.scalars(select(EditorSession)).all(), key=lambda row: row.id)[1]
    token = csrf_token(client, "/editor/account")
    client.post(f"/editor/account/sessions/{phone_row.id}/end", data={"csrf_token": token})
    assert phone.get("/editor/").status_code == 302
    assert laptop.get("/editor/").status_code == 200 and client.get("/editor/").status_code == 200
    client.post("/editor/account/sessions/end-all", data={"csrf_token": token})
    assert client.get("/editor/").status_code == 302 and laptop.get("/editor/").status_code == 302
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(EditorSession)) == 0


def test_an_admin_ends_another_editors_sessions(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """An admin's "end sessions" on the Editors page logs that editor out everywhere; editors cannot."""
    editor = make_editor(db)
    make_editor(db, email=CHIEF, role="admin")
    log_in(client)
    assert client.get("/editor/accounts").status_code == 403
    chief = app.test_client()
    log_in(chief, email=CHIEF)
    token = csrf_token(chief, "/editor/accounts")
    no_token = chief.post(f"/editor/accounts/{editor.id}/end-sessions")
    assert no_token.status_code == 400 and client.get("/editor/").status_code == 200
    chief.post(f"/editor/accounts/{editor.id}/end-sessions", data={"csrf_token": token})
    assert client.get("/editor/").status_code == 302
    assert chief.get("/editor/").status_code == 200
    assert (
        chief.post(
            "/editor/accounts/99999999999/end-sessions", data={"csrf_token": token}
        ).status_code
        == 404
    )


def test_a_password_change_ends_all_other_sessions(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, db: Session
) -> None:
    """Changing the password on the account page ends every session but gives this browser a new one; a wrong current password changes nothing."""
    make_editor(db)
    log_in(client)
    other = app.test_client()
    log_in(other)
    saved = _cookie(client)
    token = csrf_token(client, "/editor/account")
    wrong = client.post(
        "/editor/account/password",
        data={
            "current": "not it at all",
            "new": "brand new password",
            "repeat": "brand new password",
            "csrf_token": token,
        },
    )
    assert "不是您现在的密码" in wrong.get_data(as_text=True)
    assert other.get("/editor/").status_code == 200
    client.post(
        "/editor/account/password",
        data={
            "current": "correct horse battery",
            "new": "brand new password",
            "repeat": "brand new password",
            "csrf_token": token,
        },
    )
    assert other.get("/editor/").status_code == 302
    assert _replay(app, saved).get("/editor/").status_code == 302
    assert client.get("/editor/").status_code == 200
    fresh = app.test_client()
    log_in(fresh, password="brand new password")
