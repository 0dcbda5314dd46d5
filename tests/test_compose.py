"""docker-compose.yml cannot run here (no Docker engine), so it is checked against the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import create_app
from core.config import DEFAULTS
from core.config import ENV_PREFIX

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ["migrate", "web", "worker", "beat"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_variable_is_one_the_code_reads(name: str) -> None:
    """Each NEWSLETTER_* variable a service sets is a documented configuration key."""
    environment = SERVICES[name]["environment"]
    names = {
        key.removeprefix(f"{ENV_PREFIX}_") for key in environment if key.startswith(ENV_PREFIX)
    }
    assert names, f"{name} sets no configuration"
    assert names <= set(DEFAULTS), f"unknown settings in {name}: {names - set(DEFAULTS)}"
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_HOST"} <= names
    assert environment[f"{ENV_PREFIX}_ENV"] == "production"


def test_commands_name_real_entry_points() -> None:
    """web runs gunicorn on web:app, worker and beat run Celery on worker, migrate runs db upgrade."""
    assert (
        SERVICES["web"]["command"][0] == "gunicorn" and SERVICES["web"]["command"][-1] == "web:app"
    )
    assert "app = create_app()" in (ROOT / "web.py").read_text()
    for name, role in (("worker", "worker"), ("beat", "beat")):
        command = SERVICES[name]["command"]
        assert command[:3] == ["celery", "-A", "worker"] and command[3] == role
    assert "celery_app =" in (ROOT / "worker.py").read_text()
    app = create_app({"SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
    group = app.cli.commands[SERVICES["migrate"]["command"][3]]
    assert SERVICES["migrate"]["command"][4] in group.commands  # type: ignore[attr-defined]


def test_the_app_waits_for_healthy_services_and_the_schema() -> None:
    """Postgres and Redis have health checks and volumes; app services start after the migration."""
    for name in ("postgres", "redis"):
        assert "healthcheck" in SERVICES[name]
        assert any(
            str(volume).endswith(("/data", "/var/lib/postgresql/data"))
            for volume in SERVICES[name]["volumes"]
        )
    assert "--appendonly" in SERVICES["redis"]["command"]
    for name in ("web", "worker", "beat"):
        assert (
            SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
    database_url = SERVICES["web"]["environment"][f"{ENV_PREFIX}_DATABASE_URL"]
    assert re.match(
        r"postgresql\+psycopg://newsletter:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/newsletter$",
        database_url,
    )
    assert "dev" in SERVICES["mailpit"]["profiles"]


def test_the_image_contains_what_the_app_reads_at_run_time() -> None:
    """The Dockerfile copies every folder the app loads files from, and compiles the catalogues."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in (
        "core",
        "mailer",
        "issues",
        "subscribers",
        "campaigns",
        "migrations",
        "templates",
        "static",
    ):
        assert f"COPY {folder} {folder}" in dockerfile
    assert "pybabel compile" in dockerfile
