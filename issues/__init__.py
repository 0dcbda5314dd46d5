"""The magazine's content: import, store, check and tag issues; the archive; previews; CLIs."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session


def init_app(app: Flask) -> None:
    """Editor pages for issues, the public archive, previews of every edition, the commands."""
    from core import registry
    from issues import admin
    from issues import archive
    from issues import import_cli
    from issues import preview
    from issues import render_cli
    from issues import status_cli
    from issues.cli import issue_cli

    for part in (admin, archive, preview, import_cli, render_cli, status_cli):
        part.init_app(app)
    registry.add_nav(app, "issues.index", _l("Issues"))
    registry.add_nav(app, "preview.index", _l("Previews"))
    registry.add_card(app, "web/issues/_home_card.html", _home_card, order=10)
    app.cli.add_command(issue_cli)


def _home_card(db_session: Session) -> dict[str, Any]:
    from issues.models import Issue
    from mailer.console import counts_by_status

    return {"counts": counts_by_status(db_session, Issue.status)}
