"""The site's root and the health check that load balancers and compose ask."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from core import create_app


def test_root_leads_readers_to_the_subscription_page(client: FlaskClient) -> None:
    """GET / redirects to /subscribe, which is a real page."""
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/subscribe"
    assert client.get("/subscribe").status_code == 200


def test_health_is_ok_when_database_and_redis_answer(client: FlaskClient) -> None:
    """/healthz answers 200 ok with every service up."""
    response = client.get("/healthz")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok")


def test_health_names_the_service_that_is_down(settings: dict[str, Any]) -> None:
    """/healthz answers 503 and names the component (not its address) when Redis is down."""
    app = create_app(
        {
            **settings,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "RATELIMIT_STORAGE_URL": settings["RATELIMIT_STORAGE_URL"],
        }
    )
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.get_data(as_text=True)) == (503, "down: redis")


def test_https_sites_send_hsts_and_plain_http_ones_do_not(settings: dict[str, Any]) -> None:
    """Strict-Transport-Security goes out only when the site's public address is https."""
    secure = create_app({**settings, "BASE_URL": "https://news.example.org"}).test_client()
    assert secure.get("/subscribe").headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = create_app(settings).test_client()
    assert "Strict-Transport-Security" not in plain.get("/subscribe").headers
