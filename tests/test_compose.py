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
    assert SERVICES["web"]["command"] == [
        "gunicorn",
        "--config",
        "deploy/gunicorn.conf.py",
        "web:app",
    ]
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
    assert "COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py" in dockerfile
    assert 'CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "web:app"]' in dockerfile


def test_only_nginx_faces_clients_and_the_app_trusts_it_alone() -> None:
    """The proxy publishes the port and waits for a healthy web; web publishes none and trusts one proxy."""
    proxy, web = SERVICES["proxy"], SERVICES["web"]
    assert proxy["build"]["target"] == "proxy" and web["build"]["target"] == "app"
    assert [str(port).split(":")[-1] for port in proxy["ports"]] == ["8080"]
    assert "ports" not in web and web["expose"] == ["8000"]
    assert proxy["depends_on"]["web"] == {"condition": "service_healthy", "restart": True}
    trusted = web["environment"][f"{ENV_PREFIX}_TRUSTED_PROXIES"]
    assert re.fullmatch(r"\$\{NEWSLETTER_TRUSTED_PROXIES:-1\}", trusted)
    assert DEFAULTS["TRUSTED_PROXIES"][0] == 0


def test_the_proxy_image_serves_what_nginx_conf_names() -> None:
    """The proxy stage installs Debian's nginx and puts the config, static files and error pages where nginx.conf looks."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stage = dockerfile.split("FROM debian:bookworm-slim AS proxy", 1)[1].split("\nFROM ", 1)[0]
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "install -y --no-install-recommends nginx" in stage
    assert "COPY deploy/nginx.conf /etc/nginx/nginx.conf" in stage
    assert "root /srv/newsletter;" in conf and "server web:8000;" in conf and "listen 8080;" in conf
    for folder in ("errors", "static"):
        assert f"/srv/newsletter/{folder}" in stage
    for page in re.findall(r"error_page [\d ]+ /errors/(\S+);", conf):
        assert (ROOT / "deploy" / "errors" / page).is_file()
    assert '"daemon off; user www-data;"' in stage and "\nUSER " not in stage


def test_senders_and_the_receiver_share_the_return_path_settings() -> None:
    """Workers send from VERP return paths that the inbound receiver must read back, and web
    takes the webhooks: each of them sees the same VERP and webhook settings from .env."""
    keys = [
        f"{ENV_PREFIX}_{name}"
        for name in ("VERP_ENABLED", "BOUNCE_DOMAIN", "MAILGUN_SIGNING_KEY", "SENDGRID_PUBLIC_KEY")
    ]
    seen = {
        name: [SERVICES[name]["environment"].get(key) for key in keys]
        for name in ("worker", "beat", "web", "inbound")
    }
    assert seen["worker"] == seen["inbound"] == seen["web"] == seen["beat"]
    assert all(value is not None for value in seen["worker"])
    assert SERVICES["inbound"]["command"][:5] == ["flask", "--app", "web", "inbound", "serve"]
