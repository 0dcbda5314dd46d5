"""The names readers see for the configured topic keys, in one place for pages and emails.

Topic keys come from the configuration (``NEWSLETTER_TOPICS``); the labels and one-line
descriptions of the known ones are message ids here, translated where they are shown: pages
with Flask-Babel, emails with the catalogue of the email's language. A topic added only in
the configuration is shown by its key until it gets a label here.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable

from core.i18n import N_

LABELS = {"policy": N_("Policy"), "companies": N_("Companies"), "data": N_("Data")}
DESCRIPTIONS = {
    "policy": N_("Laws, regulations and government programmes for the industry."),
    "companies": N_("News, results and strategy of the industry's companies."),
    "data": N_("Market figures, production statistics and trade data."),
}


def label(key: str, gettext: Callable[[str], str]) -> str:
    """The topic's name through ``gettext``; an unknown key is shown as it is."""
    return gettext(LABELS[key]) if key in LABELS else key


def in_order(keys: Iterable[str], configured: Iterable[str]) -> list[str]:
    """The keys in the one order readers see everywhere, that of ``NEWSLETTER_TOPICS``
    (政策、企业、数据 by default); keys no longer configured come last, as they were."""
    order = list(configured)
    return sorted(keys, key=lambda key: order.index(key) if key in order else len(order))


def description(key: str, gettext: Callable[[str], str]) -> str:
    """The topic's one-line description, or an empty string for a topic without one."""
    return gettext(DESCRIPTIONS[key]) if key in DESCRIPTIONS else ""
