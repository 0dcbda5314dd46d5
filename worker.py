"""The Celery entry point: ``celery -A worker worker`` and ``celery -A worker beat``."""

from core import ConfigError
from core import create_app
from core.checks import check_services

try:
    flask_app = create_app()
    check_services(flask_app)
except ConfigError as error:
    raise SystemExit(f"newsletter: {error}") from None

celery_app = flask_app.extensions["celery"]
