"""Two-factor login: enrolment with a TOTP app, codes at login, one-time recovery codes, admins requiring it."""

from __future__ import annotations

import re
import time

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import auth
from core import totp
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

EMAIL = "editor@newsletter.test"


def _enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Turn two-factor login on from the enrolment page; the secret and the recovery codes."""
    page = client.get("/editor/account/two-factor")
    assert page.headers["Cache-Control"] == "no-store"
    text = page.get_data(as_text=True)
    assert 'src="data:image/svg+xml' in text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', text).group(1).replace(" ", "")  # type: ignore[union-attr]
    token = csrf_token(client, "/editor/account/two-factor")
    wrong = client.post(
        "/editor/account/two-factor/enable", data={"code": "000000", "csrf_token": token}
    )
    assert "验证码不对" in wrong.get_data(as_text=True)
    done = client.post(
        "/editor/account/two-factor/enable",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": token},
    )
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", done.get_data(as_text=True))
    assert len(codes) == 10 and done.headers["Cache-Control"] == "no-store"
    return secret, codes


def _password_step(client: FlaskClient) -> None:
    token = csrf_token(client, "/editor/login")
    response = client.post(
        "/editor/login",
        data={"email": EMAIL, "password": "correct horse battery", "csrf_token": token},
    )
    assert response.status_code == 302 and "/editor/login/code" in response.headers["Location"]


def _code_step(client: FlaskClient, code: str) -> int:
    token = csrf_token(client, "/editor/login/code")
    return client.post("/editor/login/code", data={"code": code, "csrf_token": token}).status_code


def test_enrol_then_log_in_with_a_code(app: Flask, client: FlaskClient, db: Session) -> None:
    """After enrolment the password alone opens nothing; a wrong code is refused, the app's code logs in, and it cannot be replayed."""
    make_editor(db)
    log_in(client)
    secret, _codes = _enrol(client)
    browser = app.test_client()
    _password_step(browser)
    assert browser.get("/editor/").status_code == 302
    assert _code_step(browser, "123456") == 200
    assert browser.get("/editor/").status_code == 302
    # The enrolment used this step's code; the app's next one (one step of drift is allowed).
    code = pyotp.TOTP(secret).at(time.time() + 30)
    assert _code_step(browser, code) == 302
    assert browser.get("/editor/").status_code == 200
    replay = app.test_client()
    _password_step(replay)
    assert _code_step(replay, code) == 200 and replay.get("/editor/").status_code == 302


def test_a_recovery_code_works_once(app: Flask, client: FlaskClient, db: Session) -> None:
    """A recovery code logs in instead of the app's code; used once, it is refused the next time."""
    make_editor(db)
    log_in(client)
    _secret, codes = _enrol(client)
    first = app.test_client()
    _password_step(first)
    assert _code_step(first, codes[0].upper().replace("-", " ")) == 302
    assert first.get("/editor/").status_code == 200
    second = app.test_client()
    _password_step(second)
    assert _code_step(second, codes[0]) == 200
    assert second.get("/editor/").status_code == 302


def test_the_last_recovery_codes_come_with_advice_in_one_chinese_text(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """With three recovery codes left the message also says to make new ones; its two Chinese
    sentences follow each other without a space (COPY_zh rule 7)."""
    make_editor(db)
    log_in(client)
    _secret, codes = _enrol(client)
    for code in codes[: len(codes) - 3]:
        browser = app.test_client()
        _password_step(browser)
        assert _code_step(browser, code) == 302
    page = browser.get("/editor/").get_data(as_text=True)
    assert "您用了一个恢复码，还剩 3 个。请到两步验证页面生成新的恢复码。" in page


def test_an_admin_requiring_two_factor_forces_enrolment(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """When an admin requires two-factor login, the editor's pages and downloads lead to enrolment until it is on."""
    editor = make_editor(db)
    make_editor(db, email="chief@newsletter.test", role="admin")
    log_in(client)
    chief = app.test_client()
    log_in(chief, email="chief@newsletter.test")
    token = csrf_token(chief, "/editor/accounts")
    chief.post(
        f"/editor/accounts/{editor.id}/two-factor", data={"required": "1", "csrf_token": token}
    )
    db.expire_all()
    assert db.get(auth.Editor, editor.id).totp_required  # type: ignore[union-attr]
    for path in ("/editor/", "/editor/account", "/editor/issues/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == "/editor/account/two-factor"
    assert "管理员要求" in client.get("/editor/account/two-factor").get_data(as_text=True)
    _enrol(client)
    assert client.get("/editor/").status_code == 200
    disable = client.post(
        "/editor/account/two-factor/disable",
        data={"password": "correct horse battery", "csrf_token": csrf_token(client, "/editor/")},
    )
    assert disable.status_code == 302
    db.expire_all()
    assert db.get(auth.Editor, editor.id).totp_enabled_at is not None  # type: ignore[union-attr]


def _client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_wrong_codes_from_many_clients_cannot_lock_the_editor_out(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Someone with the password sends ten wrong codes from ten addresses: the real editor,
    from a client that has not failed, still logs in with the app's code, while a client
    that failed is refused even with a right one (the review of issue 13.9)."""
    make_editor(db)
    log_in(client)
    secret, _codes = _enrol(client)
    for index in range(10):
        attacker = _client_at(app, f"198.51.100.{index + 1}")
        _password_step(attacker)
        assert _code_step(attacker, "000000") == 200
    failed = _client_at(app, "198.51.100.1")
    _password_step(failed)
    code = pyotp.TOTP(secret).at(time.time() + 30)
    assert _code_step(failed, code) == 429
    editor = _client_at(app, "203.0.113.9")
    _password_step(editor)
    assert _code_step(editor, code) == 302
    assert editor.get("/editor/").status_code == 200


def test_one_code_cannot_pass_twice_when_two_logins_race(app: Flask, db: Session) -> None:
    """Two second steps read the editor before either wrote the used step: only the first
    passes (the step is taken with a conditional UPDATE, not from the object read)."""
    make_editor(db)
    with app.app_context():
        first_session = app.extensions["db"]()
        second_session = app.extensions["db"]()
        editor = first_session.scalars(select(auth.Editor).where(auth.Editor.email == EMAIL)).one()
        secret = pyotp.random_base32()
        editor.totp_secret = secret
        first_session.commit()
        first = first_session.get(auth.Editor, editor.id)
        second = second_session.get(auth.Editor, editor.id)
        assert first is not None and second is not None
        assert second.totp_last_step is None
        code = pyotp.TOTP(secret).now()
        assert totp.check_code(first_session, first, code)
        first_session.commit()
        assert not totp.check_code(second_session, second, code)
        second_session.rollback()
        first_session.close()
        second_session.close()
