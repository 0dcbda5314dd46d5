"""The mail machinery: render, message, smtp, dkim, the outbox and the delivery state it shares."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    """The editor home with its test send, the send-test command, the outbox's tasks and beat."""
    from core import registry
    from mailer import cli
    from mailer import console
    from mailer import dkim

    app.register_blueprint(console.bp)
    registry.set_home(app, "console.home")
    registry.add_nav(app, "console.home", _l("Home"))
    registry.add_card(app, "web/console/_emails_card.html", console.emails_card, order=90)
    registry.add_tasks(app, "mailer.tasks")
    registry.add_beat(app, "requeue-stale-outbox", "mailer.tasks.requeue_stale", 60.0)
    registry.add_check(app, dkim.check)
    app.cli.add_command(cli.send_test)
