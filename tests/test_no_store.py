"""Personal pages and downloads tell browsers and proxies not to keep a copy (Cache-Control: no-store)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import path_of


def test_a_readers_link_pages_are_not_stored(app: Flask, client: FlaskClient, db: Session) -> None:
    """Confirm, preferences, unsubscribe (GET, button, one-click) and resubscribe send no-store."""
    reader = add_subscriber(db, "a@example.com", status="pending")
    responses = {
        "confirm": client.get(path_of(app, "confirm", reader)),
        "preferences": client.get(path_of(app, "preferences", reader)),
        "unsubscribe": client.get(path_of(app, "unsubscribe", reader)),
        "bad link": client.get("/preferences/not-a-token"),
    }
    unsubscribe = path_of(app, "unsubscribe", reader)
    responses["one-click"] = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    token = csrf_token(client, unsubscribe)
    responses["resubscribe"] = client.post(
        unsubscribe.replace("/unsubscribe/", "/resubscribe/"), data={"csrf_token": token}
    )
    headers = {page: r.headers.get("Cache-Control") for page, r in responses.items()}
    assert headers == dict.fromkeys(responses, "no-store")


def test_the_console_and_its_csv_exports_are_not_stored(client: FlaskClient, db: Session) -> None:
    """Every console page, the login page and the subscriber CSV export send no-store."""
    make_editor(db, role="admin")
    assert client.get("/editor/login").headers["Cache-Control"] == "no-store"
    log_in(client)
    for path in ("/editor/", "/editor/subscribers/", "/editor/subscribers/export.csv"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path


def test_public_pages_stay_cacheable(client: FlaskClient) -> None:
    """The archive and the subscription page are not personal: no no-store on them."""
    assert "no-store" not in client.get("/subscribe").headers.get("Cache-Control", "")
    assert "no-store" not in client.get("/issues/").headers.get("Cache-Control", "")
