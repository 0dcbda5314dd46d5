"""Languages: Chinese first, English second, for pages (Flask-Babel) and emails alike.

Message ids in the code are English; each part of the system keeps its own catalogue (a
``babel.cfg`` naming its sources, and a translations folder) so that teams can work on them
independently. Flask-Babel merges the catalogues of all directories listed in
``BABEL_TRANSLATION_DIRECTORIES``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from babel.support import NullTranslations
from babel.support import Translations
from flask import Flask
from flask import current_app
from flask import has_request_context
from flask import request
from flask_babel import Babel
from flask_babel import get_locale

from core.config import LOCALES
from core.config import ROOT

# (extraction config, translations folder), relative to the repository root.
CATALOGUES = (
    ("core/babel.cfg", "core/translations"),
    ("mailer/babel.cfg", "mailer/translations"),
    ("issues/babel.cfg", "issues/translations"),
    ("subscribers/babel.cfg", "subscribers/translations"),
    ("campaigns/babel.cfg", "campaigns/translations"),
    ("inbound/babel.cfg", "inbound/translations"),
)
LANG_COOKIE = "lang"
# A Chinese sentence ends in one of these; the next one follows without a space.
FULL_WIDTH_ENDS = ("。", "！", "？")

babel = Babel()


def N_(message: str) -> str:
    """Mark a message id where it is defined; it is translated where it is shown."""
    return message


def translation_directories() -> list[str]:
    """Every package's translations folder, in a fixed order."""
    return [str(ROOT / folder) for _, folder in CATALOGUES]


def select_locale() -> str:
    """The visitor's language: ``?lang=``, else the cookie an earlier ``?lang=`` set, else the
    browser's ``Accept-Language`` (its first zh-* or en-* entry by quality), else the default.

    Links in a reader's emails carry ``?lang=`` with the reader's language (subscribers.links),
    so the pages they open speak it. Outside a request (commands, tasks) messages are in
    English, the language of the code.
    """
    if not has_request_context():
        return "en"
    for choice in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if choice in LOCALES:
            return choice
    browser = browser_locale(request.accept_languages)
    if browser is not None:
        return browser
    default: str = current_app.config["DEFAULT_LOCALE"]
    return default


def browser_locale(accepted: Iterable[tuple[str, float]]) -> str | None:
    """The first of our languages among (tag, quality) pairs, best quality first: zh-TW and
    zh-Hans are Chinese, en-GB is English; None when the browser names neither."""
    ranked = sorted(
        ((tag, quality) for tag, quality in accepted if quality > 0), key=lambda pair: -pair[1]
    )
    for tag, _quality in ranked:
        primary = tag.replace("_", "-").split("-", 1)[0].strip().lower()
        if primary in LOCALES:
            return primary
    return None


def init_app(app: Flask) -> None:
    """Set up Flask-Babel and remember an explicit language choice in a cookie."""
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(translation_directories())
    app.config["BABEL_DEFAULT_LOCALE"] = "en"  # the language of the message ids
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
    app.after_request(_remember_choice)


def _remember_choice(response):  # type: ignore[no-untyped-def]
    choice = request.args.get("lang")
    if choice in LOCALES and request.cookies.get(LANG_COOKIE) != choice:
        response.set_cookie(LANG_COOKIE, choice, max_age=365 * 86400, samesite="Lax", httponly=True)
    if choice not in LOCALES and not _static(request.endpoint):
        # Without ?lang= the language of a page, a feed or a download depends on these two
        # request headers, so a cache must keep one copy per value. Static files are the same
        # in every language and stay cacheable as one.
        response.vary.add("Cookie")
        response.vary.add("Accept-Language")
    return response


def _static(endpoint: str | None) -> bool:
    # The app's static files ("static") and any blueprint's ("name.static").
    return endpoint is not None and endpoint.rsplit(".", 1)[-1] == "static"


def sentences(*parts: str) -> str:
    """Sentences as one text: after a Chinese sentence's full stop the next follows directly
    ("已屏蔽 1 个地址。另有 1 位无需更改。"), after an English one with a space."""
    text = ""
    for part in filter(None, parts):
        text += part if not text or text.endswith(FULL_WIDTH_ENDS) else " " + part
    return text


@cache
def translations(locale: str) -> NullTranslations:
    """The merged catalogues for ``locale``, for rendering emails outside any request."""
    merged: NullTranslations | None = None
    for directory in translation_directories():
        loaded = Translations.load(directory, [locale])
        if merged is None:
            merged = loaded
        elif isinstance(merged, Translations) and isinstance(loaded, Translations):
            merged.merge(loaded)
        elif isinstance(loaded, Translations):
            merged = loaded
    return merged or NullTranslations()
