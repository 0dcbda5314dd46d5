"""Sending an issue to its readers: plan, freeze, ledger, throttle, batches, control, progress."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session


def init_app(app: Flask) -> None:
    """The campaign tasks and the beat entry that starts, expires and recovers sends."""
    from campaigns import cli
    from campaigns import latest
    from campaigns import views
    from core import registry

    registry.add_tasks(app, "campaigns.tasks")
    registry.add_beat(
        app, "campaigns-tick", "campaigns.tasks.tick", float(app.config["SCHEDULER_SECONDS"])
    )
    registry.add_sent_check(app, send_started)
    registry.add_latest_issue(app, latest.latest_issue)
    cli.init_app(app)
    views.init_app(app)


def send_started(db_session: Session, issue_id: int) -> bool:
    """Whether a send of the issue ever started: from its first batch on, readers have it
    (running, paused, done, or cancelled after starting)."""
    from campaigns.models import Campaign

    started = exists().where(Campaign.issue_id == issue_id, Campaign.started_at.is_not(None))
    return bool(db_session.scalar(select(started)))
