"""Friendly error pages: what went wrong in plain words, never a stack trace."""

from __future__ import annotations

from flask import Flask
from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

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


def _page(code: int) -> tuple[str, int]:
    title, hint = MESSAGES.get(code, MESSAGES[400 if code < 500 else 500])
    return render_template("web/error.html", code=code, title=title, hint=hint), code


def _csrf_error(_error: CSRFError) -> tuple[str, int]:
    title = _("This form has expired or was not sent from our site.")
    hint = _("Reload the page and submit the form again.")
    return render_template("web/error.html", code=400, title=title, hint=hint), 400


def _http_error(error: HTTPException) -> tuple[str, int]:
    return _page(error.code or 500)
