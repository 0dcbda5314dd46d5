"""One place that imports every module defining models, so Base.metadata is complete."""

from __future__ import annotations


def import_all() -> None:
    """Import every model module (Alembic and the tests need all tables registered)."""
    import subscribers.models  # noqa: F401
