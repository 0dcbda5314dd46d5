"""What happens after the relay says 250: bounces, complaints, mailed unsubscribes, provider events.

The top floor: it may import core, mailer, issues, subscribers and campaigns; nothing below imports
it. Every way news comes back (the inbound SMTP receiver, provider webhooks) ends in one function,
``inbound.events.record``, which writes the event once and applies it.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The editor views of bounces and complaints, the receiver command and the webhooks."""
    from core import registry
    from inbound import cli
    from inbound import events
    from inbound import webhooks

    cli.init_app(app)
    registry.add_erase_hook(app, events.forget)

    webhooks.init_app(app)
    from inbound import views

    views.init_app(app)
