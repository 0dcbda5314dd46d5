"""Configuration: layers in order, and a bad setting stops start-up with one sentence naming it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core import ConfigError
from core import create_app
from core.checks import check_services
from core.checks import gaps
from core.config import DEFAULTS
from core.config import markdown_table

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"SECRET_KEY": None}, "NEWSLETTER_SECRET_KEY"),
        ({"DATABASE_URL": "not a url"}, "NEWSLETTER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "NEWSLETTER_DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "NEWSLETTER_REDIS_URL"),
        ({"SMTP_SECURITY": "ssl3"}, "NEWSLETTER_SMTP_SECURITY"),
        ({"BATCH_SIZE": 0}, "NEWSLETTER_BATCH_SIZE"),
        ({"TASK_TIME_LIMIT": 4000}, "NEWSLETTER_TASK_TIME_LIMIT"),
        ({"DEFAULT_LOCALE": "fr"}, "NEWSLETTER_DEFAULT_LOCALE"),
        ({"LOGIN_RATE_LIMIT": "10 per minutes please"}, "NEWSLETTER_LOGIN_RATE_LIMIT"),
        ({"SUBSCRIBE_RATE_LIMIT": "lots"}, "NEWSLETTER_SUBSCRIBE_RATE_LIMIT"),
        ({"SUBSCRIBE_ADDRESS_RATE_LIMIT": ""}, "NEWSLETTER_SUBSCRIBE_ADDRESS_RATE_LIMIT"),
        ({"SMTP_PASSWORD": 123456}, "NEWSLETTER_SMTP_PASSWORD"),
    ],
)
def test_bad_settings_are_refused_by_name(overrides: dict[str, object], variable: str) -> None:
    """Each malformed or missing setting raises ConfigError whose sentence names the variable."""
    with pytest.raises(ConfigError) as caught:
        create_app({"SECRET_KEY": "k", **overrides})
    assert variable in str(caught.value)
    assert str(caught.value).endswith(".") or ":" in str(caught.value)


def test_environment_overrides_defaults_and_test_config_overrides_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NEWSLETTER_* variables (JSON-parsed) override defaults; the factory's mapping overrides them."""
    monkeypatch.setenv("NEWSLETTER_BATCH_SIZE", "321")
    monkeypatch.setenv("NEWSLETTER_MAIL_FROM_NAME", "Chip Monthly")
    app = create_app({"SECRET_KEY": "k", "MAIL_FROM_NAME": "From the test"})
    assert app.config["BATCH_SIZE"] == 321
    assert app.config["MAIL_FROM_NAME"] == "From the test"
    assert app.config["RATELIMIT_STORAGE_URL"] == app.config["REDIS_URL"]


def test_text_settings_from_the_environment_stay_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret or password of digits (or `true`) set in the environment is kept as the string given."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "12345678901234567890")
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "123456")
    monkeypatch.setenv("NEWSLETTER_MAIL_FROM_NAME", "true")
    app = create_app({"DATABASE_URL": "sqlite://"})
    assert app.config["SECRET_KEY"] == "12345678901234567890"
    assert app.config["SMTP_PASSWORD"] == "123456"
    assert app.config["MAIL_FROM_NAME"] == "true"
    assert app.test_client().get("/editor/login").status_code == 200


def test_development_mode_needs_no_secret_but_production_does() -> None:
    """Development gets a stand-in secret key; production refuses to start without one."""
    assert create_app({"ENV": "development"}).config["SECRET_KEY"]
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app({"ENV": "production"})


def _start(module: str, env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update({"NEWSLETTER_SECRET_KEY": "k", **env_overrides})
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("module", ["web", "worker"])
@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"NEWSLETTER_SECRET_KEY": ""}, "NEWSLETTER_SECRET_KEY"),
        (
            {"NEWSLETTER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
            "NEWSLETTER_DATABASE_URL",
        ),
        ({"NEWSLETTER_DATABASE_URL": "::nonsense::"}, "NEWSLETTER_DATABASE_URL"),
        ({"NEWSLETTER_SMTP_PORT": "abc"}, "NEWSLETTER_SMTP_PORT"),
        ({"NEWSLETTER_TOPICS": "notjson"}, "NEWSLETTER_TOPICS"),
        ({"NEWSLETTER_LOGIN_RATE_LIMIT": "lots"}, "NEWSLETTER_LOGIN_RATE_LIMIT"),
        (
            {
                "NEWSLETTER_DATABASE_URL": "sqlite://",
                "NEWSLETTER_REDIS_URL": "redis://127.0.0.1:1/0",
            },
            "NEWSLETTER_REDIS_URL",
        ),
    ],
)
def test_entry_points_stop_with_one_sentence(
    module: str, env: dict[str, str], variable: str
) -> None:
    """web.py and worker.py exit non-zero with one line naming the variable, and no stack trace."""
    result = _start(module, env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("newsletter: ") and variable in lines[0]
    assert "Traceback" not in result.stderr


def test_readme_configuration_table_is_current() -> None:
    """The README's table is the one generated from DEFAULTS, so every variable is documented."""
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme
    assert len(DEFAULTS) == markdown_table().count("| `NEWSLETTER_")


def test_trusted_proxy_headers_give_the_readers_address() -> None:
    """With TRUSTED_PROXIES=1 the app sees X-Forwarded-For; with 0 it ignores the header."""
    for proxies, expected in ((1, "203.0.113.9"), (0, "127.0.0.1")):
        app = create_app({"SECRET_KEY": "k", "TRUSTED_PROXIES": proxies})

        @app.get("/address-probe")
        def probe() -> str:
            from flask import request

            return str(request.remote_addr)

        response = app.test_client().get(
            "/address-probe",
            headers={"X-Forwarded-For": "203.0.113.9"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert response.get_data(as_text=True) == expected


def test_request_bodies_over_the_upload_limit_are_refused_early() -> None:
    """MAX_CONTENT_LENGTH follows IMPORT_MAX_BYTES, so an oversized body gets the 413 page."""
    app = create_app({"SECRET_KEY": "k", "IMPORT_MAX_BYTES": 1000})
    response = app.test_client().post("/editor/login", data={"email": "x" * 200_000})
    assert response.status_code == 413 and "文件太大" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("env", "address", "warned"),
    [
        ("production", "", True),
        ("production", " \n ", True),
        ("production", "浙江省杭州市西湖区文三路 90 号", False),
        ("development", "", False),
    ],
)
def test_production_without_a_postal_address_is_a_gap(env: str, address: str, warned: bool) -> None:
    """Production with no postal address for the footers is named as a gap; otherwise none."""
    found = gaps({"ENV": env, "POSTAL_ADDRESS": address})
    assert len(found) == int(warned)
    assert all(gap.startswith("NEWSLETTER_POSTAL_ADDRESS is empty:") for gap in found)


def test_start_up_warns_once_of_an_empty_postal_address(
    settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The start-up check of a production app logs the gap once, not on every /healthz."""
    app = create_app({**settings, "POSTAL_ADDRESS": ""})
    with caplog.at_level(logging.WARNING):
        check_services(app)
        check_services(app)
    warnings = [r for r in caplog.records if "NEWSLETTER_POSTAL_ADDRESS" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    app.extensions["db"].kw["bind"].dispose()
