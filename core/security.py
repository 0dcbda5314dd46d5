"""Security by default: CSRF on every form, rate limits, strict headers and cookies."""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)

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


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if str(current_app.config["BASE_URL"]).startswith("https://"):
        # Served over TLS: browsers must never come back over plain HTTP (cookies, tokens).
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
