"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy import inspect

from core import migrate
from core.db import Base
from core.models import import_all


def test_upgraded_schema_matches_the_models(database_url: str) -> None:
    """After `upgrade head`, autogenerate finds no difference between database and models."""
    import_all()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], "the models changed without `make migration`"


def test_downgrade_removes_everything_and_upgrade_restores_it(tmp_path: object) -> None:
    """A fresh database can be migrated down to nothing and up again (SQLite file of its own)."""
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    import_all()
    migrate.upgrade(url)
    engine = create_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
