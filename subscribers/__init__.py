"""The audience: subscribers, consent, suppression; the public pages and the editor's lists."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The public and editor pages, the commands, the tasks and the editor's navigation."""
    from subscribers import views

    views.init_app(app)
