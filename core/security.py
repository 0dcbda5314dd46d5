"""Security by default: CSRF on every form, rate limits, strict headers and cookies."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.routing import Map

log = logging.getLogger(__name__)
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
# Counts kept in this process while the limiter's Redis cannot be reached (see ``hit``).
_fallback = MovingWindowRateLimiter(MemoryStorage())
# Pages under these paths are personal (the console, its CSV exports, captured mail): no
# browser or proxy may keep a copy (Cache-Control: no-store).
PRIVATE_PREFIXES = ("/editor", "/dev/")
# The largest id a URL may carry: 2**31 - 1, what an INTEGER column holds on PostgreSQL
# (SQLite's reach 2**63 - 1). Every id and number in a URL is such a column; a larger value
# would raise (OverflowError on SQLite, "integer out of range" on PostgreSQL), never match.
MAX_URL_ID = 2**31 - 1

# No inline script or style anywhere: pages load their CSS and JS from /static.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "frame-src 'self'",
        "frame-ancestors 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


def init_app(app: Flask) -> None:
    """Turn on CSRF, the limiter (Redis storage) and the security headers."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATELIMIT_STORAGE_URL"]
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # A moving window counts the last N seconds exactly: a fixed window lets a burst of twice
    # the limit through across a boundary (and would make the limits' tests depend on the clock).
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    # Redis down must not turn every limited page into a 500: the limits are then counted in
    # this process's memory (Flask-Limiter logs a warning when it falls back, and goes back
    # to Redis when it answers again).
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = str(app.config["BASE_URL"]).startswith("https://")
    app.config["PERMANENT_SESSION_LIFETIME"] = 12 * 3600
    # One limit for every request body, refused before any form parsing (CSRF reads the whole
    # form first): the largest upload any page takes is the subscriber CSV; views check their own.
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["IMPORT_MAX_BYTES"]) + 64 * 1024
    if app.config["TRUSTED_PROXIES"]:
        # Behind a proxy, rate limits and consent records need the reader's address, not its.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    csrf.init_app(app)
    limiter.init_app(app)
    app.after_request(_security_headers)


def hit(limit: RateLimitItem, *identifiers: str) -> bool:
    """Count one request against ``limit``; False once it is used up.

    For the limits counted by hand (so that no response header reports them): in Redis like
    the decorators' limits, or in memory, with a warning, while Redis cannot be reached.
    """
    try:
        return bool(limiter.limiter.hit(limit, *identifiers))
    except (redis.RedisError, OSError) as error:
        log.warning("rate-limit storage unreachable (%s); counting in memory", type(error).__name__)
        return bool(_fallback.hit(limit, *identifiers))


def no_store(response: Any) -> Any:
    """Mark ``response`` as personal: never stored by a browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _security_headers(response: Response) -> Response:
    if request.path.startswith(PRIVATE_PREFIXES) or response.mimetype == "text/csv":
        no_store(response)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if str(current_app.config["BASE_URL"]).startswith("https://"):
        # Served over TLS: browsers must never come back over plain HTTP (cookies, tokens).
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` that matches only what a database id column can hold (``MAX_URL_ID``): a
    larger number is a URL that names nothing, 404, not a database error and a 500."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_URL_ID)
        super().__init__(url_map, *args, **kwargs)


def register_converters(app: Flask) -> None:
    """Replace Werkzeug's unbounded ``int`` converter before any route is added."""
    app.url_map.converters["int"] = BoundedIntConverter
