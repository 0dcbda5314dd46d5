"""Editor previews: behind login, every segment listed with its size, each shown in a
sandboxed frame whose content carries its own strict Content-Security-Policy."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from issues import store as issues
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_segments import seed


def editor_with_seed(client: FlaskClient, db: Session) -> None:
    issues.store_issue(db, seed())
    db.commit()
    make_editor(db)
    log_in(client)


def test_previews_need_a_login(client: FlaskClient) -> None:
    """Anonymous visitors are sent to the login page, for the list and for a raw email."""
    for path in (
        "/editor/previews/",
        "/editor/previews/361",
        "/editor/previews/361/data/full/zh/email.html",
    ):
        response = client.get(path)
        assert response.status_code == 302 and "/editor/login" in response.headers["Location"]


def test_issue_preview_lists_all_28_segments_with_sizes(client: FlaskClient, db: Session) -> None:
    """7 topic choices × 2 formats × 2 languages, each with its HTML size under the budget."""
    editor_with_seed(client, db)
    home = client.get("/editor/").get_data(as_text=True)
    assert 'href="/editor/previews/"' in home
    assert 'href="/editor/previews/361"' in client.get("/editor/previews/").get_data(as_text=True)
    page = client.get("/editor/previews/361").get_data(as_text=True)
    # Sizes read in KB; the exact count of bytes is kept in the cell for this check.
    rows = re.findall(r'<td class="num" data-bytes="(\d+)">[\d.]+ KB</td>', page)
    assert len(rows) == 28
    assert all(0 < int(html) <= 90_000 for html in rows)
    assert page.count("/editor/previews/361/companies,data,policy/full/zh?width=phone") == 1
    assert "#3" in page  # the longest article is shortened in the all-topics full edition


def test_segment_page_frames_the_email_at_the_chosen_width(
    client: FlaskClient, db: Session
) -> None:
    """The page holds a sandboxed iframe of the email at phone width, and its text part."""
    editor_with_seed(client, db)
    page = client.get("/editor/previews/361/policy/digest/en?width=phone").get_data(as_text=True)
    assert re.search(
        r'<iframe class="email-frame frame-phone" sandbox="" [^>]*src="/editor/previews/361/policy/digest/en/email.html"',
        page,
    )
    assert "Dear Sample Reader," in page and " style=" not in page


def test_email_frame_is_served_with_its_own_strict_policy(client: FlaskClient, db: Session) -> None:
    """The framed email may style itself inline but run no script and load nothing else."""
    editor_with_seed(client, db)
    response = client.get("/editor/previews/361/data,policy/full/zh/email.html")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert "script-src" not in policy and "style-src 'unsafe-inline'" in policy
    html = response.get_data(as_text=True)
    assert "示例读者，您好：" in html and "[[nl-" not in html


def test_an_unknown_segment_or_issue_is_not_found(client: FlaskClient, db: Session) -> None:
    """A topic, format or language outside the configured ones is a 404, as is a missing issue."""
    editor_with_seed(client, db)
    for path in (
        "/editor/previews/361/sports/full/zh",
        "/editor/previews/361/data/weekly/zh",
        "/editor/previews/361/data/full/fr/email.html",
        "/editor/previews/999",
    ):
        assert client.get(path).status_code == 404, path
