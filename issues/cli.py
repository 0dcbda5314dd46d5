"""The ``flask --app web issue …`` command group; each feature adds its commands to it."""

from __future__ import annotations

from flask.cli import AppGroup

issue_cli = AppGroup("issue", help="Import, inspect and render magazine issues.")
