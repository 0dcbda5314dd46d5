"""The application factory. Nothing happens at import; everything is wired in ``create_app``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from core.config import ROOT
from core.config import ConfigError

__all__ = ["ConfigError", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app (and, through it, the Celery app) from the configuration layers."""
    from core import account
    from core import auth
    from core import celery
    from core import cli
    from core import clock
    from core import config
    from core import db
    from core import devmail
    from core import errors
    from core import i18n
    from core import registry
    from core import security
    from core import views

    app = Flask(
        "newsletter",
        root_path=str(ROOT),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    # Before any route is added: every <int:…> in a URL is range-checked (404 beyond).
    security.register_converters(app)
    config.load(app, test_config)
    registry.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    clock.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.public)
    app.jinja_env.globals["current_editor"] = auth.current_editor
    _register_packages(app)
    app.register_blueprint(account.bp)
    registry.add_nav(app, "account.accounts", _l("Editors"), role="admin")
    registry.add_nav(app, "account.index", _l("My account"))
    if app.config["ENV"] == "development" and app.config["CAPTURE_DIR"]:
        app.register_blueprint(devmail.bp)
        registry.add_nav(app, "devmail.inbox", _l("Captured mail"))
    # Celery comes last: it needs every package's task modules and beat entries.
    celery.celery_init_app(app)
    cli.init_app(app)
    return app


# The packages above core, from the ground up; each has an ``init_app(app)`` that registers
# its blueprints, commands, tasks, beat entries and editor navigation (core.registry).
PACKAGES = ("mailer", "issues", "subscribers", "campaigns", "inbound")


def _register_packages(app: Flask) -> None:
    """Let each package register itself; the only place core names the floors above it."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        package.init_app(app)
