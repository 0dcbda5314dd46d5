"""Every integer id in a URL is range-checked: a number no database column can hold is a 404."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor

HUGE = 2**63  # one more than SQLite's (and PostgreSQL's bigint) largest integer


def _int_rules(app: Flask) -> list[tuple[str, str, dict[str, object]]]:
    """(method, url, values) for every route with an <int:…> part, each int set to HUGE."""
    found = []
    for rule in app.url_map.iter_rules():
        ints = [
            name for name, conv in rule._converters.items() if isinstance(conv, IntegerConverter)
        ]
        if not ints:
            continue
        values: dict[str, object] = {name: HUGE if name in ints else "x" for name in rule.arguments}
        method = "GET" if "GET" in (rule.methods or set()) else "POST"
        path = rule.rule
        for name, value in values.items():
            path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
        found.append((method, path, values))
    return found


def test_the_probe_urls_answer_404(app: Flask, client: FlaskClient, db: Session) -> None:
    """The probe's /issues/9223372036854775808 and /editor/previews/<huge> answer 404, not 500."""
    make_editor(db, role="admin")
    log_in(client)
    assert client.get(f"/issues/{HUGE}").status_code == 404
    assert client.get(f"/issues/1/{HUGE}").status_code == 404
    assert client.get(f"/editor/previews/{HUGE}").status_code == 404


def test_every_route_with_an_int_answers_404_for_a_huge_id(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """Logged in as an admin (so no login redirect hides the view), each int route gives 404."""
    make_editor(db, role="admin")
    log_in(client)
    token = csrf_token(client, "/editor/")
    rules = _int_rules(app)
    assert len(rules) >= 8, rules
    answers = {}
    for method, path, _ in rules:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token})
        answers[(method, path)] = response.status_code
    assert answers == dict.fromkeys(answers, 404)


@pytest.mark.parametrize("value", [2**31 - 1, 1])
def test_ids_within_range_still_reach_their_view(client: FlaskClient, value: int) -> None:
    """The bound keeps every id an INTEGER column can hold: looked up, 404 as no such issue."""
    response = client.get(f"/issues/{value}")
    assert response.status_code == 404 and "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("value", [2**31, 2**63 - 1])
def test_ids_beyond_an_integer_column_answer_404(client: FlaskClient, value: int) -> None:
    """Numbers SQLite could hold but PostgreSQL's INTEGER cannot are refused on both alike."""
    assert client.get(f"/issues/{value}").status_code == 404
    assert client.get(f"/issues/1/{value}").status_code == 404
