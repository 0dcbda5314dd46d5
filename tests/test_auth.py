"""Editor accounts: created from the command line, hashed, logged in with limits, checked by role."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import auth
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor


def test_create_asks_for_the_password_twice_and_stores_only_a_hash(
    runner: FlaskCliRunner, db: Session
) -> None:
    """`editors create` prompts twice; the stored value is an argon2id hash, never the password."""
    result = runner.invoke(
        args=["editors", "create", "Chief@Example.org", "--role", "admin"],
        input="a long passphrase\na long passphrase\n",
    )
    assert result.exit_code == 0, result.output
    editor = db.scalars(select(auth.Editor)).one()
    assert (editor.email, editor.role) == ("chief@example.org", "admin")
    assert (
        editor.password_hash.startswith("$argon2id$")
        and "a long passphrase" not in editor.password_hash
    )


def test_create_refuses_mismatch_short_password_and_duplicates(
    runner: FlaskCliRunner, db: Session
) -> None:
    """Bad input is refused with a sentence and exit 2; no account is half-made."""
    mismatch = runner.invoke(
        args=["editors", "create", "a@example.org"],
        input="first password\nsecond password\nfirst password\nfirst password\n",
    )
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output.lower()
    short = runner.invoke(args=["editors", "create", "b@example.org"], input="short\nshort\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    again = runner.invoke(
        args=["editors", "create", "A@example.org"], input="another password\nanother password\n"
    )
    assert again.exit_code == 2 and "already exists" in again.output
    role = runner.invoke(
        args=["editors", "create", "c@example.org", "--role", "owner"], input="x\n"
    )
    assert role.exit_code == 2
    assert "Traceback" not in short.output + again.output + role.output
    assert [e.email for e in db.scalars(select(auth.Editor))] == ["a@example.org"]


def test_login_logout_and_the_editor_home(client: FlaskClient, db: Session) -> None:
    """A right password opens the editor home; a wrong one does not; logout closes the session."""
    make_editor(db)
    assert client.get("/editor/").status_code == 302
    token = csrf_token(client, "/editor/login")
    wrong = client.post(
        "/editor/login",
        data={"email": "editor@newsletter.test", "password": "wrong password", "csrf_token": token},
    )
    assert wrong.status_code == 200 and "邮箱或密码不正确" in wrong.get_data(as_text=True)
    log_in(client)
    home = client.get("/editor/")
    assert home.status_code == 200 and "editor@newsletter.test" in home.get_data(as_text=True)
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    assert client.get("/editor/").status_code == 302


def test_login_without_csrf_token_is_refused(client: FlaskClient, db: Session) -> None:
    """A login form posted without its CSRF token is refused with the friendly page."""
    make_editor(db)
    response = client.post(
        "/editor/login",
        data={"email": "editor@newsletter.test", "password": "correct horse battery"},
    )
    assert response.status_code == 400 and "此表单已过期" in response.get_data(as_text=True)
    assert client.get("/editor/").status_code == 302


def test_login_is_rate_limited(app: Flask, client: FlaskClient, db: Session) -> None:
    """After LOGIN_RATE_LIMIT attempts a minute from one address, the next gets 429, right password or not."""
    make_editor(db)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    token = csrf_token(client, "/editor/login")
    for _ in range(limit):
        response = client.post(
            "/editor/login",
            data={"email": "x@example.org", "password": "wrong password", "csrf_token": token},
        )
        assert response.status_code == 200
    blocked = client.post(
        "/editor/login",
        data={
            "email": "editor@newsletter.test",
            "password": "correct horse battery",
            "csrf_token": token,
        },
    )
    assert blocked.status_code == 429 and "尝试次数过多" in blocked.get_data(as_text=True)


def test_one_account_is_rate_limited_across_addresses(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Guesses at one account spread over many IPs are capped by LOGIN_ACCOUNT_RATE_LIMIT: past it, every IP that failed is refused; other accounts are not."""
    make_editor(db)
    limit = int(app.config["LOGIN_ACCOUNT_RATE_LIMIT"].split()[0])
    token = csrf_token(client, "/editor/login")

    def attempt(number: int, email: str, password: str) -> int:
        address = f"10.0.{number // 250}.{number % 250 + 1}"
        return client.post(
            "/editor/login",
            data={"email": email, "password": password, "csrf_token": token},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    for number in range(limit):
        assert attempt(number, "Editor@Newsletter.test", "wrong password") == 200
    for number in range(limit):
        assert attempt(number, "editor@newsletter.test", "correct horse battery") == 429
    assert attempt(limit + 1, "other@newsletter.test", "wrong password") == 200


def test_guessing_cannot_lock_an_editor_out(app: Flask, client: FlaskClient, db: Session) -> None:
    """Thirty wrong passwords from other IPs: a fresh client's wrong guess is checked once, then refused, and the editor's right password from a fresh client logs in."""
    make_editor(db)
    limit = int(app.config["LOGIN_ACCOUNT_RATE_LIMIT"].split()[0])
    token = csrf_token(client, "/editor/login")

    def attempt(address: str, password: str) -> int:
        return client.post(
            "/editor/login",
            data={"email": "editor@newsletter.test", "password": password, "csrf_token": token},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    for number in range(limit):
        assert attempt(f"10.1.0.{number + 1}", "wrong password") == 200
    assert attempt("10.1.0.1", "wrong password") == 429
    assert attempt("10.2.0.1", "another guess") == 200
    assert attempt("10.2.0.1", "a third guess") == 429
    assert attempt("2001:db8::1", "v6 guess") == 200
    assert attempt("2001:db8::2", "same /64 network") == 429
    editor_browser = app.test_client()
    token = csrf_token(editor_browser, "/editor/login")
    response = editor_browser.post(
        "/editor/login",
        data={
            "email": "editor@newsletter.test",
            "password": "correct horse battery",
            "csrf_token": token,
        },
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert response.status_code == 302
    assert editor_browser.get("/editor/").status_code == 200


def test_changing_the_password_ends_existing_sessions(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, db: Session
) -> None:
    """A session made with the old password stops working once the password is changed."""
    make_editor(db)
    log_in(client)
    assert client.get("/editor/").status_code == 200
    result = runner.invoke(
        args=["editors", "set-password", "editor@newsletter.test"],
        input="brand new password\nbrand new password\n",
    )
    assert result.exit_code == 0, result.output
    assert client.get("/editor/").status_code == 302


def test_next_parameter_never_leaves_the_site(client: FlaskClient, db: Session) -> None:
    """Login follows ?next= only to a local path: an absolute or protocol-relative URL goes home."""
    make_editor(db)
    for target, expected in (
        ("//evil.example/x", "/editor/"),
        ("https://evil.example/", "/editor/"),
        ("/\\evil.example/", "/editor/"),
        ("/%5Cevil.example/", "/editor/"),
        ("/%09/evil.example/", "/editor/"),
        ("/%2F/evil.example/", "/editor/"),
        ("/editor/?a=1", "/editor/?a=1"),
    ):
        client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/login")})
        token = csrf_token(client, "/editor/login")
        response = client.post(
            f"/editor/login?next={target}",
            data={
                "email": "editor@newsletter.test",
                "password": "correct horse battery",
                "csrf_token": token,
            },
        )
        assert response.headers["Location"] == expected


def test_admin_only_views_refuse_editors(app: Flask, client: FlaskClient, db: Session) -> None:
    """login_required('admin') answers 403 to an editor and lets an admin in."""

    @app.get("/editor/admin-only-probe")
    @auth.login_required("admin")
    def probe() -> str:
        return "admin area"

    make_editor(db)
    make_editor(db, email="boss@newsletter.test", role="admin")
    log_in(client)
    assert client.get("/editor/admin-only-probe").status_code == 403
    client.post("/editor/logout", data={"csrf_token": csrf_token(client, "/editor/")})
    log_in(client, email="boss@newsletter.test")
    assert client.get("/editor/admin-only-probe").get_data(as_text=True) == "admin area"


def test_editor_home_queues_a_test_email(client: FlaskClient, db: Session) -> None:
    """The test-send form on the editor home queues an outbox row for the address given."""
    from mailer.models import OutboxMessage

    make_editor(db)
    log_in(client)
    token = csrf_token(client, "/editor/")
    response = client.post(
        "/editor/", data={"address": "check@example.org", "locale": "en", "csrf_token": token}
    )
    assert response.status_code == 302
    row = db.scalars(select(OutboxMessage)).one()
    assert (row.kind, row.to_address, row.locale, row.params["requested_by"]) == (
        "test",
        "check@example.org",
        "en",
        "editor@newsletter.test",
    )
    bad = client.post("/editor/", data={"address": "nope", "locale": "zh", "csrf_token": token})
    assert bad.status_code == 200 and "请输入电子邮箱地址" in bad.get_data(as_text=True)
    assert len(db.scalars(select(OutboxMessage)).all()) == 1


def test_login_attempts_are_counted_in_redis(client: FlaskClient, db: Session, redis: Any) -> None:
    """The limiter keeps its counters in the real Redis, so every web process shares them."""
    make_editor(db)
    assert redis.dbsize() == 0
    token = csrf_token(client, "/editor/login")
    client.post(
        "/editor/login",
        data={"email": "x@example.org", "password": "wrong password", "csrf_token": token},
    )
    keys = [key.decode() for key in redis.keys("*")]
    assert any("login" in key for key in keys), keys


def test_editor_home_shows_counts_and_refreshes_while_a_test_is_on_its_way(
    client: FlaskClient, db: Session
) -> None:
    """The overview counts subscribers and issues; a queued test email makes the page refresh itself."""
    from mailer.models import OutboxMessage
    from tests.test_subscribe import add_subscriber

    make_editor(db)
    add_subscriber(db, "one@example.com")
    add_subscriber(db, "two@example.com")
    add_subscriber(db, "gone@example.com", status="unsubscribed")
    log_in(client)
    page = client.get("/editor/").get_data(as_text=True)
    assert 'id="count-active">2<' in page and 'id="count-issues">0<' in page
    assert 'http-equiv="refresh"' not in page
    db.add(OutboxMessage(kind="test", to_address="x@example.com", locale="zh", params={}))
    db.commit()
    assert 'http-equiv="refresh"' in client.get("/editor/").get_data(as_text=True)
