"""Configuration in layers: documented defaults here, then an instance file, then the environment.

Every key the application reads is listed in ``DEFAULTS`` with a comment saying what it means.
An operator sets any of them as an environment variable with the ``NEWSLETTER_`` prefix
(``NEWSLETTER_DATABASE_URL``); values that look like JSON (numbers, ``true``, lists) are parsed
as JSON, as Flask's ``from_prefixed_env`` does. The README's configuration table is generated
from this mapping (``markdown_table()``; tests/test_config.py fails when it is stale).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from flask import Flask
from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "NEWSLETTER"

# Each entry: key -> (default, one-line meaning). Order is the order of the README table.
DEFAULTS: dict[str, tuple[Any, str]] = {
    "ENV": (
        "production",
        "production or development; development enables the mail viewer and dev defaults",
    ),
    "SECRET_KEY": (None, "signs sessions and tokens; required in production"),
    "DATABASE_URL": (
        f"sqlite:///{ROOT / 'var' / 'newsletter.db'}",
        "SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    ),
    "REDIS_URL": ("redis://127.0.0.1:6379/0", "Celery broker and result backend"),
    "RATELIMIT_STORAGE_URL": (None, "where rate-limit counters live; defaults to REDIS_URL"),
    "BASE_URL": (
        "http://127.0.0.1:5000",
        "public address of the web app, used in links inside emails",
    ),
    "SMTP_HOST": ("127.0.0.1", "SMTP relay host"),
    "SMTP_PORT": (1025, "SMTP relay port"),
    "SMTP_SECURITY": ("none", "none, starttls or tls (implicit TLS)"),
    "SMTP_USERNAME": (None, "SMTP login, if the relay wants one"),
    "SMTP_PASSWORD": (None, "SMTP password"),
    "SMTP_TIMEOUT": (30, "seconds before an SMTP connection or reply is given up"),
    "SMTP_DATA_TIMEOUT": (
        600,
        "seconds to wait for the relay's answer to a whole message (RFC 5321: 10 minutes);"
        " giving up sooner can double a message",
    ),
    "MAIL_FROM": ("newsletter@example.org", "envelope sender and From address"),
    "MAIL_FROM_NAME": ("天堂之芯", "display name in From"),
    "MAIL_REPLY_TO": (None, "Reply-To address, if different from MAIL_FROM"),
    "MESSAGE_ID_DOMAIN": ("example.org", "domain on the right of every Message-ID"),
    "LIST_ID": ("newsletter.example.org", "List-Id header value (RFC 2919)"),
    "UNSUBSCRIBE_MAILTO": (
        "unsubscribe@example.org",
        "mailto address in List-Unsubscribe; each reader's copy says unsubscribe+TOKEN@ that domain",
    ),
    # Bounces, complaints and mailed unsubscribes (issue 11, the inbound/ package).
    "VERP_ENABLED": (
        False,
        "send each campaign email from its own return path BOUNCE_LOCAL_PART+TOKEN@BOUNCE_DOMAIN, so a bounce names its delivery",
    ),
    "BOUNCE_DOMAIN": (None, "domain of the VERP return paths; defaults to MAIL_FROM's domain"),
    "BOUNCE_LOCAL_PART": ("bounces", "user part before the + of the VERP return paths"),
    "SOFT_BOUNCE_LIMIT": (
        3,
        "temporary bounces of one reader within SOFT_BOUNCE_DAYS that stop their mail for good",
    ),
    "SOFT_BOUNCE_DAYS": (14, "days over which temporary bounces are counted"),
    "INBOUND_HOST": (
        "127.0.0.1",
        "address the inbound mail receiver (bounces, unsubscribes) listens on",
    ),
    "INBOUND_PORT": (2525, "port of the inbound mail receiver"),
    "INBOUND_MAX_BYTES": (10_000_000, "largest message the receiver takes (552 above it)"),
    "INBOUND_MESSAGES_PER_MINUTE": (600, "messages a minute from one client (then 451)"),
    "INBOUND_CONNECTIONS_PER_CLIENT": (20, "connections one client may hold open (then 421)"),
    "INBOUND_CONNECTIONS": (200, "connections the receiver holds open in all (then 421)"),
    "INBOUND_SESSION_SECONDS": (600, "longest SMTP session, however busy, before 421 and close"),
    # Provider webhooks, POST /webhooks/<provider> (inbound/webhooks.py): each provider is off
    # (404) until its secret is set; see the README's "Provider webhooks".
    "WEBHOOK_RATE_LIMIT": ("600 per minute", "webhook requests per sending IP address"),
    "WEBHOOK_MAX_BYTES": (2_000_000, "largest webhook request body"),
    "WEBHOOK_MAX_AGE_SECONDS": (300, "signed times (Mailgun, SendGrid) further off are refused"),
    "SES_TOPIC_ARNS": ([], "SNS topics whose SES bounces and complaints are applied; [] is off"),
    "MAILGUN_SIGNING_KEY": (None, "Mailgun's HTTP webhook signing key"),
    "POSTMARK_USERNAME": (None, "user name of the Basic auth in Postmark's webhook URL"),
    "POSTMARK_PASSWORD": (None, "password of the Basic auth in Postmark's webhook URL"),
    "POSTMARK_ALLOWED_IPS": ([], "addresses or networks Postmark may post from; [] is any"),
    "SENDGRID_PUBLIC_KEY": (None, "verification key of SendGrid's Signed Event Webhook"),
    "DKIM_DOMAIN": (None, "d= of the DKIM signature; signing is on when this and the key are set"),
    "DKIM_SELECTOR": ("newsletter", "s= of the DKIM signature"),
    "DKIM_PRIVATE_KEY_PATH": (None, "PEM file with the DKIM private key"),
    "HTML_BUDGET_BYTES": (90_000, "largest HTML part; Gmail clips above 102 KB"),
    "BATCH_SIZE": (200, "recipients per send task"),
    "SEND_RATE": (50, "messages per second across all workers and hosts (a Redis token bucket)"),
    "SEND_PROVIDER_RATES": (
        {},
        'messages per second per receiving domain, e.g. {"163.com": 0.8, "qq.com": 20}',
    ),
    "SEND_PROVIDER_BACKOFF_SECONDS": (
        300,
        "how long a domain that answered with a rate-limit deferral (421, 4.7.x) is left alone",
    ),
    "SEND_RECORD_EVERY": (
        10,
        "outcomes written per commit: the most messages a killed worker process may send twice",
    ),
    "SEND_PARALLEL_BATCHES": (4, "batches of one campaign that may be sending at once"),
    "SEND_CLAIM_LEASE_SECONDS": (
        120,
        "a batch's claim not renewed for this long is presumed dead and sent again",
    ),
    "SEND_RELAY_FAILURES_TO_PAUSE": (
        3,
        "relay failures in a row (cannot connect, 421, AUTH, TLS) that pause a campaign",
    ),
    "SEND_FAILURE_RATE_TO_PAUSE": (
        50,
        "percent of failed messages among the last 200 of a campaign that pauses it",
    ),
    "SEND_APPROVAL": (False, "an editor's send waits until an administrator approves it"),
    "SCHEDULER_SECONDS": (15, "how often the beat starts due campaigns and recovers sends"),
    "TIMEZONE": ("Asia/Shanghai", "time zone of every time shown to and entered by editors"),
    "RETRY_BACKOFF_SECONDS": (
        30,
        "wait before retrying after a temporary SMTP failure; doubles per try, at most 300",
    ),
    "TOKEN_MAX_AGE_DAYS": (7, "days a confirmation link stays valid"),
    "TASK_TIME_LIMIT": (
        300,
        "hard limit in seconds for one task; must stay under the broker visibility timeout",
    ),
    "VISIBILITY_TIMEOUT": (3600, "seconds before Redis redelivers an unacknowledged task"),
    "LOGIN_RATE_LIMIT": ("10 per minute", "login attempts per IP address"),
    "LOGIN_ACCOUNT_RATE_LIMIT": (
        "30 per hour",
        "login attempts per editor address, from any IP (stops guessing spread over many hosts)",
    ),
    "SUBSCRIBE_RATE_LIMIT": (
        "20 per hour",
        "subscribe and email-me-my-link requests per IP address",
    ),
    "SUBSCRIBE_ADDRESS_RATE_LIMIT": (
        "3 per hour",
        "subscribe and email-me-my-link requests per email address, whoever sends them",
    ),
    "IMPORT_MAX_BYTES": (20_000_000, "largest subscriber CSV file an editor may upload"),
    "IMPORT_BATCH_SIZE": (5000, "subscriber CSV rows inserted per committed batch"),
    "TRUSTED_PROXIES": (
        0,
        "reverse proxies in front of the web app whose X-Forwarded-For/Proto/Host are believed; 0 when none",
    ),
    "CAPTURE_DIR": (None, "development only: folder of captured .eml files shown at /dev/mail"),
    "INSTANCE_TOKEN": (
        None,
        "sent by /healthz as X-Newsletter-Instance, so a starter (make demo) knows its own server",
    ),
    "DEFAULT_LOCALE": ("zh", "language of pages and emails unless the reader chose another"),
    "ORGANISATION_NAME": ("", "association named in each email's footer (else MAIL_FROM_NAME)"),
    "POSTAL_ADDRESS": ("", "its postal address, in each email's footer (anti-spam laws want it)"),
    "WELCOME_EMAIL": (True, "send a welcome email with the preferences link after confirming"),
    "TOPICS": (
        ["policy", "companies", "data"],
        "topic keys readers choose from and editors tag articles with (labels are translated)",
    ),
    "SECTION_TOPICS": (
        {
            "芯政策": ["policy"],
            "芯企业": ["companies"],
            "芯资讯": ["data"],
            "芯动态": [],
            "芯观点": [],
            "芯伙伴": [],
        },
        "default topics of each section's articles on import; a section mapped to [] goes to everyone",
    ),
}

LOCALES = ("zh", "en")
SMTP_SECURITY_CHOICES = ("none", "starttls", "tls")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one sentence naming the variable."""


# Query parameters of a URL that carry a credential (redis-py reads ?password=).
SECRET_PARAMETERS = frozenset({"password", "pass", "passwd", "secret", "token", "key"})
HIDDEN = "***"


# Everything between the scheme and the last "@": read as text, not by urlsplit, which ends
# the authority at the first "/", "?" or "#", characters a password may hold unencoded (and
# SQLAlchemy and redis-py accept so).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)@")


def _without_userinfo_secret(text: str) -> str:
    match = _USERINFO.match(text)
    if match is None:
        return text
    scheme, userinfo = match.groups()
    user = userinfo.split(":", 1)[0]
    kept = f"{user}:{HIDDEN}" if ":" in userinfo and "/" not in user else HIDDEN
    return f"{scheme}{kept}@{text[match.end() :]}"


def redact_url(url: object) -> str:
    """``url`` as it may be printed: any password or secret in it replaced by ***.

    The user name stays (it helps find the account); the password in ``user:password@``, a
    bare ``:password@`` (Redis) and query parameters such as ``?password=`` do not. Text that
    is not a URL at all is shown only as far as it cannot hold a credential.
    """
    text = _without_userinfo_secret(str(url))
    try:
        parts = urlsplit(text)
    except ValueError:
        return HIDDEN
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(name.lower() in SECRET_PARAMETERS for name, _ in pairs):
        hidden = [(n, HIDDEN if n.lower() in SECRET_PARAMETERS else v) for n, v in pairs]
        text = text.replace("?" + parts.query, "?" + urlencode(hidden, safe="*"), 1)
    return text


# Settings whose value is never printed, and those printed only with credentials hidden.
SECRET_KEYS = frozenset({"SECRET_KEY", "SMTP_PASSWORD", "MAILGUN_SIGNING_KEY", "POSTMARK_PASSWORD"})
URL_KEYS = frozenset({"DATABASE_URL", "REDIS_URL", "RATELIMIT_STORAGE_URL"})


def shown(key: str, value: object) -> str:
    """How a setting's value appears in a message: hidden, redacted, or as it is."""
    if key in SECRET_KEYS:
        return f"a {type(value).__name__} (not shown)"
    if key in URL_KEYS:
        return repr(redact_url(value))
    return repr(value)


def env_name(key: str) -> str:
    """The environment variable an operator sets for a configuration key."""
    return f"{ENV_PREFIX}_{key}"


def load(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    """Fill ``app.config`` from the layers, then check it."""
    app.config.from_mapping({key: default for key, (default, _) in DEFAULTS.items()})
    app.config.from_pyfile(str(Path(app.instance_path) / "newsletter.cfg"), silent=True)
    app.config.from_prefixed_env(ENV_PREFIX)
    keep_text(app.config)
    if test_config is not None:
        app.config.from_mapping(test_config)
    finish(app.config)
    check(app.config)


def text_keys() -> list[str]:
    """The settings that are text (their default is a string, or none)."""
    return [
        key for key, (default, _) in DEFAULTS.items() if default is None or isinstance(default, str)
    ]


def keep_text(config: Any) -> None:
    """Text settings keep the environment's characters: JSON parsing would turn a password
    of digits into a number, and ``true`` into a boolean."""
    for key in text_keys():
        raw = os.environ.get(env_name(key))
        if raw is not None:
            config[key] = raw


def finish(config: Any) -> None:
    """Derive the settings that follow from others."""
    if config["ENV"] == "development" and not config["SECRET_KEY"]:
        config["SECRET_KEY"] = "development-only-secret-key"  # noqa: S105 - dev mode only
    config["RATELIMIT_STORAGE_URL"] = config["RATELIMIT_STORAGE_URL"] or config["REDIS_URL"]
    config["DEBUG"] = False


def check(config: Mapping[str, Any]) -> None:
    """Refuse a configuration that cannot work, with one sentence naming the variable."""
    for key in text_keys():
        if config[key] is not None and not isinstance(config[key], str):
            raise ConfigError(f"{env_name(key)} must be text, not {shown(key, config[key])}.")
    if config["ENV"] not in ("production", "development"):
        raise ConfigError(
            f"{env_name('ENV')} must be production or development, not {config['ENV']!r}."
        )
    if not config["SECRET_KEY"]:
        raise ConfigError(
            f"{env_name('SECRET_KEY')} is not set; production needs a long random secret."
        )
    try:
        url = make_url(str(config["DATABASE_URL"]))
    except ArgumentError:
        raise ConfigError(
            f"{env_name('DATABASE_URL')} is not a database URL: "
            f"{redact_url(config['DATABASE_URL'])!r}."
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"{env_name('DATABASE_URL')} must be a sqlite or postgresql URL.")
    for key in ("REDIS_URL", "RATELIMIT_STORAGE_URL"):
        if not str(config[key]).startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ConfigError(
                f"{env_name(key)} must be a redis:// URL, not {redact_url(config[key])!r}."
            )
    if config["SMTP_SECURITY"] not in SMTP_SECURITY_CHOICES:
        raise ConfigError(f"{env_name('SMTP_SECURITY')} must be one of none, starttls, tls.")
    if config["DEFAULT_LOCALE"] not in LOCALES:
        raise ConfigError(f"{env_name('DEFAULT_LOCALE')} must be zh or en.")
    for key in (
        "SMTP_PORT",
        "SMTP_TIMEOUT",
        "SMTP_DATA_TIMEOUT",
        "HTML_BUDGET_BYTES",
        "BATCH_SIZE",
        "SEND_RATE",
        "TOKEN_MAX_AGE_DAYS",
        "RETRY_BACKOFF_SECONDS",
        "TASK_TIME_LIMIT",
        "VISIBILITY_TIMEOUT",
        "IMPORT_MAX_BYTES",
        "IMPORT_BATCH_SIZE",
        "SEND_PROVIDER_BACKOFF_SECONDS",
        "SEND_RECORD_EVERY",
        "SEND_PARALLEL_BATCHES",
        "SEND_CLAIM_LEASE_SECONDS",
        "SEND_RELAY_FAILURES_TO_PAUSE",
        "SEND_FAILURE_RATE_TO_PAUSE",
        "SCHEDULER_SECONDS",
        "SOFT_BOUNCE_LIMIT",
        "SOFT_BOUNCE_DAYS",
        "INBOUND_PORT",
    ):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] <= 0:
            raise ConfigError(
                f"{env_name(key)} must be a positive whole number, not {config[key]!r}."
            )
    for key in (
        "LOGIN_RATE_LIMIT",
        "LOGIN_ACCOUNT_RATE_LIMIT",
        "SUBSCRIBE_RATE_LIMIT",
        "SUBSCRIBE_ADDRESS_RATE_LIMIT",
    ):
        # A limit the limiter cannot read would be skipped at request time: no limit at all.
        try:
            parse_many(config[key])
        except ValueError:
            raise ConfigError(
                f"{env_name(key)} must be a rate like '10 per minute', not {config[key]!r}."
            ) from None
    check_topics(config["TOPICS"], config["SECTION_TOPICS"])
    check_sending(config)
    proxies = config["TRUSTED_PROXIES"]
    if not isinstance(proxies, int) or isinstance(proxies, bool) or not 0 <= proxies <= 5:
        raise ConfigError(
            f"{env_name('TRUSTED_PROXIES')} must be a whole number from 0 to 5, not {proxies!r}."
        )
    if config["TASK_TIME_LIMIT"] >= config["VISIBILITY_TIMEOUT"]:
        raise ConfigError(
            f"{env_name('TASK_TIME_LIMIT')} must be below {env_name('VISIBILITY_TIMEOUT')}, "
            "or Redis would hand a running task to a second worker."
        )


def check_sending(config: Mapping[str, Any]) -> None:
    """Provider rates are positive numbers per domain; the zone is one the system knows."""
    rates = config["SEND_PROVIDER_RATES"]
    if not isinstance(rates, dict) or not all(
        isinstance(domain, str)
        and domain
        and isinstance(rate, int | float)
        and not isinstance(rate, bool)
        and rate > 0
        for domain, rate in rates.items()
    ):
        raise ConfigError(
            f"{env_name('SEND_PROVIDER_RATES')} must map domains to messages per second, "
            f'like {{"163.com": 0.8}}, not {rates!r}.'
        )
    if config["SEND_FAILURE_RATE_TO_PAUSE"] > 100:
        raise ConfigError(f"{env_name('SEND_FAILURE_RATE_TO_PAUSE')} is a percentage, 1 to 100.")
    for key in ("SEND_APPROVAL", "VERP_ENABLED", "WELCOME_EMAIL"):
        if not isinstance(config[key], bool):
            raise ConfigError(f"{env_name(key)} must be true or false.")
    # Each reader's mailto is its user part, +TOKEN, @ and its domain (mailer.verp).
    if not re.fullmatch(
        r"[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*", str(config["UNSUBSCRIBE_MAILTO"])
    ):
        raise ConfigError(
            f"{env_name('UNSUBSCRIBE_MAILTO')} must be a plain address like unsubscribe@example.org, "
            f"not {config['UNSUBSCRIBE_MAILTO']!r}."
        )
    for key in ("BOUNCE_DOMAIN", "BOUNCE_LOCAL_PART"):
        # Part of every envelope sender: one plain ASCII word, no @, +, spaces or line breaks.
        value = config[key]
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,200}", value):
            raise ConfigError(
                f"{env_name(key)} must be letters, digits, dots and hyphens, not {value!r}."
            )
    try:
        ZoneInfo(str(config["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{env_name('TIMEZONE')} must be a time zone like Asia/Shanghai, not {config['TIMEZONE']!r}."
        ) from None


def check_topics(topics: Any, section_topics: Any) -> None:
    """Topics are a list of short keys; every section maps only to configured topics."""
    if (
        not isinstance(topics, list | tuple)
        or not topics
        or not all(isinstance(t, str) and re.fullmatch(r"[a-z][a-z0-9_-]{0,29}", t) for t in topics)
    ):
        raise ConfigError(
            f"{env_name('TOPICS')} must be a JSON list of short lowercase keys, not {topics!r}."
        )
    if not isinstance(section_topics, dict) or not all(
        isinstance(keys, list | tuple) and set(keys) <= set(topics)
        for keys in section_topics.values()
    ):
        raise ConfigError(
            f"{env_name('SECTION_TOPICS')} must map section names to lists of "
            f"{env_name('TOPICS')} keys, not {section_topics!r}."
        )


def markdown_table() -> str:
    """The README's configuration table, generated from ``DEFAULTS``."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for key, (default, meaning) in DEFAULTS.items():
        shown = "(none)" if default is None else f"`{default}`"
        if key == "DATABASE_URL":
            shown = "`sqlite:///<project>/var/newsletter.db`"
        lines.append(f"| `{env_name(key)}` | {shown} | {meaning} |")
    return "\n".join(lines)
