"""Start-up checks: refuse to run, in one sentence naming the variable, when a service is out of reach."""

from __future__ import annotations

import redis
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core import db
from core import registry
from core.config import ConfigError
from core.config import env_name


def check_services(app: Flask) -> None:
    """Raise ConfigError if the database or Redis cannot be reached, or a package's own
    start-up check (``registry.add_check``: DKIM must be able to sign) fails."""
    for check in registry.of(app).checks:
        check(app)
    with app.app_context():
        try:
            with db.engine().connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            reason = str(error.orig if hasattr(error, "orig") else error).splitlines()[0]
            raise ConfigError(
                f"The database in {env_name('DATABASE_URL')} cannot be reached: {reason}"
            ) from None
    try:
        redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=3).ping()
    except (redis.RedisError, OSError) as error:
        raise ConfigError(
            f"Redis at {env_name('REDIS_URL')} ({app.config['REDIS_URL']}) cannot be reached: {error}"
        ) from None
