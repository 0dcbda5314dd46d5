"""One place that imports every module defining models, so Base.metadata is complete."""

from __future__ import annotations

import importlib

# Every module that defines models; `make migration` autogenerates from what these register.
MODEL_MODULES = (
    "core.auth",
    "core.sessions",
    "core.totp",
    "mailer.models",
    "issues.models",
    "subscribers.models",
    "campaigns.models",
    "inbound.models",
)


def import_all() -> None:
    """Import every model module (Alembic and the tests need all tables registered)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
