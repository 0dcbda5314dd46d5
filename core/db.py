"""The database: one engine per app, one session per request or task, typed declarative models.

Models live beside the code that owns them (``subscribers/models.py``, ``mailer/models.py``,
``core/auth.py``) and all derive from ``Base`` here, so Alembic sees one metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from sqlalchemy import DateTime
from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import TypeDecorator
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

# Named constraints make Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind the models store)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TopicSet(TypeDecorator[tuple[str, ...]]):
    """A set of topic keys stored as one sorted, comma-joined string.

    A plain string makes the (topics, format, locale) segment of a subscriber a value that
    SQL can GROUP BY on both SQLite and PostgreSQL, which JSON columns cannot do portably.
    """

    impl = String(200)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return ",".join(sorted(set(value)))

    def process_result_value(self, value: str | None, dialect: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(topic for topic in value.split(",") if topic)


def make_engine(url: str, pooled: bool = True) -> Engine:
    """An engine with the settings each backend needs (``pooled=False`` for one-off tools)."""
    if url.startswith("sqlite"):
        options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if not pooled:
        return create_engine(url, poolclass=NullPool)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets the web app read while a worker writes; foreign keys are off by default in SQLite.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def init_app(app: Flask) -> None:
    """Create the engine and session factory, and close the request's session at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    # Each session knows its app, so that plain functions over a session (issues.store) can
    # ask the app's registry without an app context.
    app.extensions["db"] = sessionmaker(engine, expire_on_commit=False, info={"app": app})
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    """The current app's engine."""
    factory: sessionmaker[Session] = current_app.extensions["db"]
    bound = factory.kw["bind"]
    assert isinstance(bound, Engine)
    return bound


def session() -> Session:
    """The session of the current request or task, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db"]()
    db_session: Session = g.db_session
    return db_session


@contextmanager
def transaction() -> Iterator[Session]:
    """A unit of work: commits when the block ends, rolls back everything if it raises."""
    db_session = session()
    try:
        yield db_session
        db_session.commit()
    except BaseException:
        db_session.rollback()
        raise


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


def on_commit(db_session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once, right after ``db_session`` commits (never if it rolls back).

    This is how tasks are enqueued after the commit: a worker must never look for a row
    that the web request has not yet made visible.
    """
    db_session.info.setdefault("on_commit", []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_on_commit(db_session: Session) -> None:
    callbacks = db_session.info.pop("on_commit", [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_on_commit(db_session: Session) -> None:
    db_session.info.pop("on_commit", None)
