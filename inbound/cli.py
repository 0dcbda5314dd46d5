"""``flask --app web inbound serve [--host H] [--port P]``: run the inbound mail receiver."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import Flask
from flask import current_app
from flask.cli import AppGroup
from flask.cli import with_appcontext

from inbound import receiver

inbound_cli = AppGroup("inbound", help="The inbound mail receiver for bounces and unsubscribes.")


@inbound_cli.command("serve", help="Receive bounces, complaints and mailed unsubscribes over SMTP.")
@with_appcontext
@click.option("--host", default=None, help="Address to listen on (default: INBOUND_HOST).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: INBOUND_PORT)."
)
@click.option("--lmtp", is_flag=True, help="Speak LMTP (Postfix's lmtp transport) instead of SMTP.")
def serve(host: str | None, port: int | None, lmtp: bool) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    host = host or str(app.config["INBOUND_HOST"])
    port = port or int(app.config["INBOUND_PORT"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # aiosmtpd logs every command at INFO; one line per message (ours) is what an operator reads.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        server = receiver.controller(app, host, port, lmtp)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
    click.echo(f"receiving mail on {host}:{port}" + (" (LMTP)" if lmtp else ""))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


def init_app(app: Flask) -> None:
    """Register the ``inbound`` command group."""
    app.cli.add_command(inbound_cli)
