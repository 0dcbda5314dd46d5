"""No response, start-up message or log line shows a password: URLs are printed redacted."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from core import create_app
from core.checks import ServiceDown
from core.checks import check_services
from core.config import ConfigError
from core.config import redact_url
from tests.conftest import ROOT
from tests.conftest import free_port
from tests.conftest import settings_env

PASSWORD = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{PASSWORD}@cache.internal:6379/0", "redis://:***@cache.internal:6379/0"),
        (f"rediss://user:{PASSWORD}@h/1", "rediss://user:***@h/1"),
        (f"redis://h:6379/0?password={PASSWORD}&db=2", "redis://h:6379/0?password=***&db=2"),
        (
            f"postgresql+psycopg://news:{PASSWORD}@db:5432/news",
            "postgresql+psycopg://news:***@db:5432/news",
        ),
        (f"redis://{PASSWORD}@h/0", "redis://***@h/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:////var/lib/news.db", "sqlite:////var/lib/news.db"),
        # Unencoded "/", "#" and "?" in a password: urlsplit ends the host part there, and
        # the review found such a password printed whole.
        (
            "postgresql+psycopg://news:s3cr/et@db:5432/news",
            "postgresql+psycopg://news:***@db:5432/news",
        ),
        ("redis://:pa#ss@h/0", "redis://:***@h/0"),
        ("redis://:p?w@h/0?db=1", "redis://:***@h/0?db=1"),
    ],
)
def test_urls_are_printed_without_their_credentials(url: str, shown: str) -> None:
    """A password in the user part or in the query becomes ***; the rest stays readable."""
    assert redact_url(url) == shown


def _down_redis(settings: dict[str, Any]) -> dict[str, Any]:
    return {**settings, "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"}


def test_health_names_the_component_not_its_address(
    settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """With a password in REDIS_URL and Redis down, anonymous /healthz says "redis", nothing more."""
    app = create_app(_down_redis(settings))
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/healthz")
    body = response.get_data(as_text=True)
    assert (response.status_code, body) == (503, "down: redis")
    assert response.headers["Cache-Control"] == "no-store"
    assert PASSWORD not in caplog.text and "redis://:***@127.0.0.1" in caplog.text


def test_health_is_rate_limited(client: Any) -> None:
    """One client may ask /healthz 60 times a minute; the 61st gets 429."""
    codes = [client.get("/healthz").status_code for _ in range(61)]
    assert codes[:60] == [200] * 60 and codes[60] == 429


def test_start_up_check_hides_the_password(settings: dict[str, Any]) -> None:
    """The start-up refusal names the variable and the host, never the password."""
    app = create_app(_down_redis(settings))
    with pytest.raises(ServiceDown) as raised:
        check_services(app)
    assert raised.value.component == "redis"
    assert "NEWSLETTER_REDIS_URL" in str(raised.value) and PASSWORD not in str(raised.value)


def test_web_entry_point_prints_no_password(settings: dict[str, Any]) -> None:
    """`flask --app web` with Redis down exits with one sentence, and the password is not in it."""
    env = settings_env(_down_redis(settings))
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "web", "routes"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "NEWSLETTER_REDIS_URL" in output and "***" in output
    assert PASSWORD not in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("REDIS_URL", f"http://:{PASSWORD}@h/0"),
        ("RATELIMIT_STORAGE_URL", f"mysql://u:{PASSWORD}@h/0"),
        ("DATABASE_URL", f"mysql://u:{PASSWORD}@h/0"),
        ("SMTP_PASSWORD", 12345),
        ("SECRET_KEY", 987654321),
    ],
)
def test_configuration_errors_hide_secrets(settings: dict[str, Any], key: str, value: Any) -> None:
    """A malformed URL or secret setting is refused by name, its credential left out."""
    with pytest.raises(ConfigError) as raised:
        create_app({**settings, key: value})
    message = str(raised.value)
    assert f"NEWSLETTER_{key}" in message
    assert PASSWORD not in message and str(value) not in message
