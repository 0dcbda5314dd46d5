"""Start-up checks: refuse to run, in one sentence naming the variable, when a service is out of
reach; and warn once in the log, in the same kind of sentence, of what production can run without
but should not (``gaps``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core import db
from core import registry
from core.config import ConfigError
from core.config import env_name
from core.config import redact_url

# Set on the app once its start-up warnings are in the log.
WARNED = "newsletter.start-up warnings"


class ServiceDown(ConfigError):
    """A service cannot be reached. ``component`` names it (``database``, ``redis``, or the
    module of a package's check) for /healthz, which says no more than that; the message,
    with any credential in its URL hidden, is for the operator's terminal and log."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


def check_services(app: Flask) -> None:
    """Raise ServiceDown if the database or Redis cannot be reached, or a package's own
    start-up check (``registry.add_check``: DKIM must be able to sign) fails."""
    for check in registry.of(app).checks:
        try:
            check(app)
        except ServiceDown:
            raise
        except ConfigError as error:
            raise ServiceDown(check.__module__.rsplit(".", 1)[-1], str(error)) from None
    check_database(app)
    check_redis(app)
    # /healthz runs these checks too; the warnings are for the start-up log, once.
    if not app.extensions.get(WARNED):
        app.extensions[WARNED] = True
        for gap in gaps(app.config):
            app.logger.warning("%s", gap)


def gaps(config: Mapping[str, Any]) -> list[str]:
    """What a production configuration lacks without being unable to run, one sentence each."""
    found = []
    if config["ENV"] == "production" and not str(config["POSTAL_ADDRESS"] or "").strip():
        found.append(
            f"{env_name('POSTAL_ADDRESS')} is empty: the footer of every email should give the "
            "association's postal address, as anti-spam laws ask; set it before sending."
        )
    return found


def check_database(app: Flask) -> None:
    with app.app_context():
        try:
            with db.engine().connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            reason = str(error.orig if hasattr(error, "orig") else error).splitlines()[0]
            raise ServiceDown(
                "database",
                f"The database in {env_name('DATABASE_URL')} "
                f"({redact_url(app.config['DATABASE_URL'])}) cannot be reached: {reason}",
            ) from None


def check_redis(app: Flask) -> None:
    url = app.config["REDIS_URL"]
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except (redis.RedisError, OSError) as error:
        # redis-py's messages name the host and port, never the password; the URL is redacted.
        raise ServiceDown(
            "redis",
            f"Redis at {env_name('REDIS_URL')} ({redact_url(url)}) cannot be reached: {error}",
        ) from None
