"""Wiring of the mailer's web parts and commands into the app."""

from __future__ import annotations

from flask import Flask

from mailer import admin
from mailer import archive
from mailer import import_cli
from mailer import preview
from mailer import render_cli
from mailer.cli import issue_cli

# Editor pages for issues, the public archive, previews of every segment, and the commands.
PARTS = (admin, archive, preview, import_cli, render_cli)


def init_app(app: Flask) -> None:
    for part in PARTS:
        part.init_app(app)
    app.cli.add_command(issue_cli)
