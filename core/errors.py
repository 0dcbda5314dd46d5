"""Friendly error pages: what went wrong in plain words, never a stack trace."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import redis
from flask import Flask
from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from core.security import limiter

MESSAGES = {
    400: (_l("The request could not be understood."), _l("Go back and try again.")),
    403: (_l("You are not allowed to do this."), _l("Ask an administrator if you need access.")),
    404: (_l("This page does not exist."), _l("Check the address, or start from the home page.")),
    405: (_l("This page cannot be used that way."), _l("Go back and use the buttons on the page.")),
    413: (_l("The file is too large."), _l("Upload a smaller file.")),
    429: (_l("Too many attempts in a short time."), _l("Wait a minute, then try again.")),
    500: (_l("Something went wrong on our side."), _l("Try again in a moment; we have been told.")),
}


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _page(code: int, hint: Any = None) -> tuple[str, int]:
    title, default_hint = MESSAGES.get(code, MESSAGES[400 if code < 500 else 500])
    page = render_template("web/error.html", code=code, title=title, hint=hint or default_hint)
    return page, code


def _csrf_error(_error: CSRFError) -> tuple[str, int]:
    title = _("This form has expired or was not sent from our site.")
    hint = _("Reload the page and submit the form again.")
    return render_template("web/error.html", code=400, title=title, hint=hint), 400


def _http_error(error: HTTPException) -> tuple[str, int]:
    if error.code == 429:
        return _page(429, wait_hint(seconds_to_wait(error)))
    return _page(error.code or 500)


def seconds_to_wait(error: HTTPException) -> float | None:
    """How long until the refused request would be let through, when that is known.

    A view that refuses by hand says so with ``abort(429, retry_after=...)``; a limit of
    Flask-Limiter's own is looked up in the limiter (the one this request broke).
    """
    retry_after: Any = getattr(error, "retry_after", None)
    if isinstance(retry_after, datetime):
        return retry_after.timestamp() - time.time()
    if isinstance(retry_after, int | float):
        return float(retry_after)
    current = limiter.current_limit if limiter.enabled else None
    if current is None or not current.breached:
        return None
    try:
        # The window's own reset time (``reset_at`` adds a second for the header's sake).
        return float(current.window[0]) - time.time()
    except (redis.RedisError, OSError):
        return None  # the page still answers, with the general hint


def wait_hint(seconds: float | None) -> str:
    """The 429 page's hint ("Wait 5 minutes, then try again."), in the visitor's language."""
    if seconds is None:
        return str(MESSAGES[429][1])
    if seconds <= 60:
        count = max(1, math.ceil(seconds))
        return str(
            ngettext(
                "Wait %(num)s second, then try again.",
                "Wait %(num)s seconds, then try again.",
                count,
            )
        )
    if seconds <= 3600:
        count = math.ceil(seconds / 60)
        return str(
            ngettext(
                "Wait %(num)s minute, then try again.",
                "Wait %(num)s minutes, then try again.",
                count,
            )
        )
    count = math.ceil(seconds / 3600)
    return str(
        ngettext("Wait %(num)s hour, then try again.", "Wait %(num)s hours, then try again.", count)
    )
