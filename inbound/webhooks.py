"""Provider webhooks: POST /webhooks/<provider> for Amazon SES (through SNS), Mailgun, Postmark
and SendGrid, each signature-checked, then mapped to ``MailEvent``s and recorded in one transaction.

Server to server, so no CSRF token (the signature or the credentials are the proof), but rate
limited per sending address and size limited. The answers are one plain English sentence each,
for the provider's delivery log, not a page for a person:

- a provider whose secret is not set: 404 (it is off);
- a body over WEBHOOK_MAX_BYTES: 413; a body that cannot be read: 400;
- a missing or wrong signature or credentials: 401; a stale time, a topic or address not
  allowed: 403;
- a replay, a token or signature seen before, or a request every event of which was recorded
  already: 409 (nothing changed; the provider logs it and gives up);
- otherwise 200, also when the request held no event we act on (deliveries, opens, clicks).

Everything is read and checked before the transaction starts, so no refusal changes the
database; the events are recorded together, or (a database error) none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from limits import parse_many
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from core import db
from core.config import ConfigError
from core.security import csrf
from core.security import limiter
from inbound import events
from inbound import sns
from inbound import webhook_common as common
from inbound import webhook_mailgun
from inbound import webhook_postmark
from inbound import webhook_sendgrid
from inbound import webhook_ses
from inbound.webhook_common import Refused

bp = Blueprint("webhooks", __name__)
PROVIDERS: dict[str, ModuleType] = {
    "ses": webhook_ses,
    "mailgun": webhook_mailgun,
    "postmark": webhook_postmark,
    "sendgrid": webhook_sendgrid,
}
Reader = Callable[[Mapping[str, Any], bytes, Headers, str], list[events.MailEvent]]


def init_app(app: Flask) -> None:
    """Check the webhook settings, then register the endpoint and the SNS certificate trust."""
    check_config(app.config)
    sns.init_app(app)
    app.register_blueprint(bp)


def _rate_limit() -> str:
    return str(current_app.config["WEBHOOK_RATE_LIMIT"])


def plain(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


@bp.post("/webhooks/<provider>")
@csrf.exempt
@limiter.limit(_rate_limit)
def receive(provider: str) -> Response:
    """One provider request: verify, read every event, then record them all at once."""
    config = current_app.config
    module = PROVIDERS.get(provider)
    if module is None or not module.enabled(config):
        return plain("No such webhook, or it is not configured.", 404)
    request.max_content_length = int(config["WEBHOOK_MAX_BYTES"])
    try:
        body = request.get_data(cache=False)
        reader: Reader = module.read
        found = reader(config, body, request.headers, request.remote_addr or "")
    except RequestEntityTooLarge:
        return plain("The request body is too large.", 413)
    except Refused as refused:
        response = plain(refused.message, refused.status)
        if refused.status == 401 and provider == "postmark":
            # Credentials go in Postmark's webhook URL; a client that waits to be asked is asked.
            response.headers["WWW-Authenticate"] = 'Basic realm="webhooks"'
        return response
    try:
        with db.transaction() as db_session:
            results = [events.record(db_session, config, event) for event in found]
    except BaseException:
        # Nothing was recorded: the provider's retry of this very request must be taken.
        common.forget_nonces(config)
        raise
    if results and all(result.duplicate for result in results):
        return plain("These events were received before; nothing was changed.", 409)
    return plain(f"{len(results) - sum(r.duplicate for r in results)} event(s) recorded.", 200)


@bp.errorhandler(HTTPException)
def _refused(error: HTTPException) -> Response:
    """Errors inside the endpoint (429 from the limiter) answer in plain text too."""
    return plain(str(error.description or error.name), error.code or 400)


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse webhook settings that cannot work, in one sentence naming the variable."""
    try:
        parse_many(str(config["WEBHOOK_RATE_LIMIT"]))
    except ValueError:
        raise ConfigError(
            "NEWSLETTER_WEBHOOK_RATE_LIMIT must be a rate like '600 per minute'."
        ) from None
    for key in ("WEBHOOK_MAX_BYTES", "WEBHOOK_MAX_AGE_SECONDS"):
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"NEWSLETTER_{key} must be a positive whole number, not {value!r}.")
    for key in ("SES_TOPIC_ARNS", "POSTMARK_ALLOWED_IPS"):
        value = config[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"NEWSLETTER_{key} must be a JSON list of text, not {value!r}.")
    for network in config["POSTMARK_ALLOWED_IPS"]:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"NEWSLETTER_POSTMARK_ALLOWED_IPS holds {network!r}, not an address or network."
            ) from None
    if bool(config["POSTMARK_USERNAME"]) != bool(config["POSTMARK_PASSWORD"]):
        raise ConfigError(
            "NEWSLETTER_POSTMARK_USERNAME and NEWSLETTER_POSTMARK_PASSWORD are set together."
        )
    if config["SENDGRID_PUBLIC_KEY"]:
        webhook_sendgrid.public_key(str(config["SENDGRID_PUBLIC_KEY"]))
