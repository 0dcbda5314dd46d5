"""Small helpers the tests share: CSRF tokens from real pages, logging in as an editor."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core import auth

# The real issue the project was built for (read-only, beside the repository, as in CI).
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_ad8e7aff219fd574.txt"

_TOKEN = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on page ``url``, as a browser would have it."""
    page = client.get(url).get_data(as_text=True)
    match = _TOKEN.search(page)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def make_editor(
    db: Session,
    email: str = "editor@newsletter.test",
    role: str = "editor",
    password: str = "correct horse battery",
) -> auth.Editor:
    editor = auth.create_editor(db, email, password, role)
    db.commit()
    return editor


def log_in(
    client: FlaskClient,
    email: str = "editor@newsletter.test",
    password: str = "correct horse battery",
) -> None:
    token = csrf_token(client, "/editor/login")
    response = client.post(
        "/editor/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
