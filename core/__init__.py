"""The application factory. Nothing happens at import; everything is wired in ``create_app``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from core.config import ROOT
from core.config import ConfigError

__all__ = ["ConfigError", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app (and, through it, the Celery app) from the configuration layers."""
    from core import auth
    from core import celery
    from core import cli
    from core import config
    from core import db
    from core import devmail
    from core import errors
    from core import i18n
    from core import security
    from core import views

    app = Flask(
        "newsletter",
        root_path=str(ROOT),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    config.load(app, test_config)
    db.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    celery.celery_init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.public)
    if app.config["ENV"] == "development" and app.config["CAPTURE_DIR"]:
        app.register_blueprint(devmail.bp)
    app.jinja_env.globals["current_editor"] = auth.current_editor
    # Packages add (endpoint, label, role) entries to the editor navigation in their init_app.
    editor_nav: list[tuple[str, Any, str]] = [("auth.home", _l("Home"), "editor")]
    if "devmail" in app.blueprints:
        editor_nav.append(("devmail.inbox", _l("Captured mail"), "editor"))
    app.jinja_env.globals["editor_nav"] = editor_nav
    _register_packages(app)
    cli.init_app(app)
    return app


def _register_packages(app: Flask) -> None:
    """Let each feature package add its blueprints, navigation entries and commands."""
    import mailer.views
    import subscribers.views

    mailer.views.init_app(app)
    subscribers.views.init_app(app)
