"""The web entry point: ``flask --app web run`` or ``gunicorn web:app``."""

from core import ConfigError
from core import create_app
from core.checks import check_services

try:
    app = create_app()
    check_services(app)
except ConfigError as error:
    # One sentence, no stack trace: the operator needs to know which variable to fix.
    raise SystemExit(f"newsletter: {error}") from None
