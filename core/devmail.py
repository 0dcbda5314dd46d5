"""Development only: the mail captured by ``mailer.capture``, for logged-in editors at /dev/mail."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from werkzeug.wrappers import Response

from core import auth

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

_NAME = re.compile(r"[0-9T]+-[0-9]{6}\.eml")
# A captured HTML body is shown in a sandboxed frame, with no scripts and no remote loads;
# the policy sandboxes it too when it is opened on its own, outside the frame.
_FRAME_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; "
    "frame-ancestors 'self'; sandbox"
)


def _folder() -> Path:
    return Path(current_app.config["CAPTURE_DIR"])


def _load(name: str) -> EmailMessage:
    if not _NAME.fullmatch(name) or not (_folder() / name).is_file():
        abort(404)
    with (_folder() / name).open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert isinstance(message, EmailMessage)
    return message


@bp.before_request
def _editors_only() -> Response | None:
    # Captured mail holds live confirmation, preference and unsubscribe links: editors only,
    # in development too.
    return auth.gate()


@bp.get("/")
def inbox() -> str:
    # Only files the capture server wrote: another .eml in the folder must not hide the rest.
    names = sorted(
        (p.name for p in _folder().glob("*.eml") if _NAME.fullmatch(p.name)), reverse=True
    )
    names = names[:200]
    messages = [(name, _load(name)) for name in names]
    return render_template("web/devmail/inbox.html", messages=messages)


@bp.get("/<name>")
def show(name: str) -> str:
    message = _load(name)
    text = message.get_body(("plain",))
    return render_template(
        "web/devmail/message.html",
        name=name,
        message=message,
        text=text.get_content() if text else "",
        has_html=message.get_body(("html",)) is not None,
    )


@bp.get("/<name>/html")
def html(name: str) -> Response:
    part = _load(name).get_body(("html",))
    if part is None:
        abort(404)
    response = Response(part.get_content(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = _FRAME_POLICY
    return response


@bp.get("/<name>/raw")
def raw(name: str) -> Response:
    _load(name)
    return Response((_folder() / name).read_bytes(), mimetype="text/plain")
