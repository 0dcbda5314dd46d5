"""Topics, formats and languages as readers see them: configured keys with translated labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from core import topics as core_topics

FORMAT_LABELS: dict[str, tuple[Any, Any]] = {
    # Not "every article in full": a long issue cannot fit one email under Gmail's clipping
    # limit, so its longest articles come as summaries with a link to the website.
    "full": (
        _l("Full issue"),
        _l(
            "The articles of your topics, in the email. When an issue is too long for one"
            " email, the longest articles come as summaries with a link to read them in full"
            " on our website."
        ),
    ),
    "digest": (_l("Digest"), _l("Headlines and summaries, with links to read more.")),
}
LANGUAGE_LABELS = {"zh": "中文", "en": "English"}
# What the language choice changes, said next to it on the subscribe and preferences pages.
LANGUAGE_HINT = _l(
    "The email's own words (headings, buttons, links) are in this language."
    " The articles stay in the language they were written in."
)
STATUS_LABELS: dict[str, Any] = {
    "pending": _l("waiting for confirmation"),
    "active": _l("active"),
    "unsubscribed": _l("unsubscribed"),
    "bounced": _l("bounced"),
    "complained": _l("complained"),
}


def topic_keys() -> list[str]:
    """The topics readers can choose, from the configuration."""
    return [str(key) for key in current_app.config["TOPICS"]]


def topic_label(key: str) -> Any:
    return LazyString(core_topics.label, key, gettext)


def topic_list(keys: Iterable[str]) -> str:
    """The topics' names in the configured order, joined as the page's language lists things
    (政策、数据 / Policy, Data); "none" for no topic."""
    ordered = core_topics.in_order(keys, topic_keys())
    return str(gettext(", ").join(str(topic_label(key)) for key in ordered) or gettext("none"))


def topic_choices() -> list[tuple[str, Any]]:
    return [(key, topic_label(key)) for key in topic_keys()]


def topic_hint(key: str) -> Any:
    return LazyString(core_topics.description, key, gettext)


def topic_hints() -> dict[str, Any]:
    return {key: topic_hint(key) for key in topic_keys()}


def format_hints() -> dict[str, Any]:
    return {key: hint for key, (_label, hint) in FORMAT_LABELS.items()}
