"""Wiring of the mailer's web parts and commands into the app."""

from __future__ import annotations

import importlib

from flask import Flask

from mailer.cli import issue_cli

# Modules that each define ``init_app(app)``: editor pages, the public archive, previews, commands.
PARTS = ("mailer.admin", "mailer.archive", "mailer.preview", "mailer.import_cli", "mailer.render_cli")


def init_app(app: Flask) -> None:
    for name in PARTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.init_app(app)
    app.cli.add_command(issue_cli)
