"""Sending an issue to its readers: plan, freeze, ledger, throttle, batches, control, progress."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Nothing to register until the campaign engine is built."""
