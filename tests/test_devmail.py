"""The development mail viewer: editors only, only captured files shown, their HTML only sandboxed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core import create_app
from mailer.message import build_message
from tests.helpers import log_in
from tests.helpers import make_editor

NAME = "20260101T000000000000-000001.eml"


@pytest.fixture
def viewer(app: Flask, settings: dict[str, Any], tmp_path: Path, db: Session) -> FlaskClient:
    """A development app whose capture folder holds one HTML email and a stray file, with an editor logged in."""
    folder = tmp_path / "mail"
    folder.mkdir()
    message = build_message(
        {"From": "a@example.org", "To": "b@example.org", "Subject": "Hello"},
        "plain words",
        '<p>html words</p><form action="https://evil.example/"><button>go</button></form>',
    )
    (folder / NAME).write_bytes(message.as_bytes())
    (folder / "notes.eml").write_bytes(b"Subject: not captured by us\r\n\r\nhi\r\n")
    (tmp_path / "secret.eml").write_bytes(b"Subject: outside\r\n\r\nsecret\r\n")
    development = create_app(
        {**settings, "TESTING": True, "ENV": "development", "CAPTURE_DIR": str(folder)}
    )
    make_editor(db)
    client = development.test_client()
    log_in(client)
    return client


def test_anonymous_visitors_are_sent_to_the_login(viewer: FlaskClient) -> None:
    """Without an editor's login, no captured email, list or file is shown, in development too."""
    anonymous = viewer.application.test_client()
    for path in (
        "/dev/mail/",
        f"/dev/mail/{NAME}",
        f"/dev/mail/{NAME}/html",
        f"/dev/mail/{NAME}/raw",
    ):
        response = anonymous.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/editor/login?next=")
        assert b"html words" not in response.get_data() and b"Hello" not in response.get_data()


def test_inbox_lists_captured_mail_despite_a_stray_file(viewer: FlaskClient) -> None:
    """A file the capture server did not write (no matching name) is skipped, not a 404 for the inbox."""
    response = viewer.get("/dev/mail/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert NAME in page and "notes.eml" not in page


@pytest.mark.parametrize(
    "path",
    ["/dev/mail/..%2Fsecret.eml", "/dev/mail/../secret.eml", "/dev/mail/notes.eml/raw"],
)
def test_names_outside_the_capture_pattern_are_not_served(viewer: FlaskClient, path: str) -> None:
    """Traversal or a name the capture server never writes gets 404, never the file."""
    response = viewer.get(path)
    assert response.status_code == 404
    assert b"secret" not in response.get_data() and b"hi\r\n" not in response.get_data()


def test_html_part_is_sandboxed_in_its_frame_and_on_its_own(viewer: FlaskClient) -> None:
    """The HTML part loads in a sandboxed iframe, and opened directly its CSP sandboxes it too."""
    page = viewer.get(f"/dev/mail/{NAME}").get_data(as_text=True)
    assert "<iframe" in page and " sandbox " in page
    response = viewer.get(f"/dev/mail/{NAME}/html")
    assert response.status_code == 200 and b"html words" in response.get_data()
    policy = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert "form-action 'none'" in policy
