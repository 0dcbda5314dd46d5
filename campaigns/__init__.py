"""Sending an issue to its readers: plan, freeze, ledger, throttle, batches, control, progress."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The campaign tasks and the beat entry that starts, expires and recovers sends."""
    from campaigns import cli
    from campaigns import views
    from core import registry

    registry.add_tasks(app, "campaigns.tasks")
    registry.add_beat(
        app, "campaigns-tick", "campaigns.tasks.tick", float(app.config["SCHEDULER_SECONDS"])
    )
    cli.init_app(app)
    views.init_app(app)
