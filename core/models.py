"""One place that imports every module defining models, so Base.metadata is complete."""

from __future__ import annotations

import importlib

MODEL_MODULES = ("core.auth", "mailer.models", "subscribers.models")


def import_all() -> None:
    """Import every model module that exists (a package may not have models yet)."""
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
