"""Email templates: a sandboxed Jinja2 environment per language, usable without any request.

Workers render email outside Flask's request context, so emails do not use Flask's Jinja
environment. Each language gets its own environment with its catalogue installed, since
installing translations into a shared environment per call would not be thread-safe.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import FileSystemLoader
from jinja2 import StrictUndefined
from jinja2 import select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from core import i18n
from core.config import LOCALES
from core.config import ROOT

EMAIL_TEMPLATES = ROOT / "templates" / "email"


@cache
def environment(locale: str) -> SandboxedEnvironment:
    """The email environment for ``locale`` (HTML autoescaped, undefined names are errors)."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}")
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(EMAIL_TEMPLATES)),
        # HTML is escaped; the text part is not HTML, so escaping it would corrupt names with &.
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    return env


def render_pair(name: str, locale: str, **context: Any) -> tuple[str, str]:
    """Render ``name.html`` and ``name.txt`` from templates/email in ``locale``."""
    env = environment(locale)
    html = env.get_template(f"{name}.html").render(**context)
    text = env.get_template(f"{name}.txt").render(**context)
    return html, text
