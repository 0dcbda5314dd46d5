"""Alembic, driven from code: the same migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from core.config import ROOT


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for ``database_url`` using the project's migrations folder."""
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def regenerate_initial() -> None:
    """Rewrite the initial migration from the models (allowed only until the first release)."""
    import tempfile
    from pathlib import Path

    for old in (ROOT / "migrations" / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'empty.db'}"
        command.revision(alembic_config(url), message="initial", autogenerate=True, rev_id="0001")


if __name__ == "__main__":
    regenerate_initial()
