"""Where the packages above ``core`` plug in, so that core never imports them.

Each package's ``init_app(app)`` registers its blueprints itself and adds here what core
then uses: entries of the editor navigation, cards of the editor home page, beat entries
and the modules that define its Celery tasks. Adding a package touches no other package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NamedTuple

from flask import Flask
from sqlalchemy.orm import Session

# A card of the editor home: its template, and what the template needs, from the database.
CardContext = Callable[[Session], dict[str, Any]]
# A panel on another package's page (a campaign's, a subscriber's): what its template needs,
# from the database and the id of the page's object; None draws no panel.
PanelContext = Callable[[Session, int], dict[str, Any] | None]
# The pages that draw panels, by the name their template asks for them with.
PANEL_PLACES = ("campaign", "subscriber")


LatestIssue = Callable[[Session, tuple[str, ...], str, str], dict[str, str] | None]


class NavItem(NamedTuple):
    endpoint: str
    label: Any  # a lazy string, translated where the navigation is drawn
    role: str  # the least role that sees the entry: "editor" or "admin"


@dataclass
class Registry:
    nav: list[NavItem] = field(default_factory=list)
    # (order, template, context): the home draws them by ``order``, then registration.
    cards: list[tuple[int, str, CardContext]] = field(default_factory=list)
    beat: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_modules: list[str] = field(default_factory=list)
    # Start-up checks: each raises ConfigError, in one sentence, when the app must not start.
    checks: list[Callable[[Flask], None]] = field(default_factory=list)
    # Links on an issue's page to what other packages do with it: (endpoint, label).
    issue_actions: list[tuple[str, Any]] = field(default_factory=list)
    # Whether readers may already have an issue, from a package that sends it: (session,
    # issue id) -> bool. An issue any of them says yes to is frozen for good.
    sent_checks: list[Callable[[Session, int], bool]] = field(default_factory=list)
    # place -> [(template, context)]: drawn where the page says ``panels(place, id)``.
    panels: dict[str, list[tuple[str, PanelContext]]] = field(default_factory=dict)
    # The latest issue readers received, from a package that sends issues: (session, topics,
    # format, locale) -> {"subject", "url"} or None. The welcome email links to it.
    latest_issue: list[LatestIssue] = field(default_factory=list)
    # What other packages keep about a person, scrubbed when their data is erased: (session,
    # subscriber id, address) -> None, called in the erase's transaction.
    erase_hooks: list[Callable[[Session, int, str], None]] = field(default_factory=list)
    # The endpoint editors land on after logging in.
    home: str = "auth.login"


def init_app(app: Flask) -> Registry:
    registry = Registry()
    app.extensions["newsletter.registry"] = registry
    app.jinja_env.globals["editor_nav"] = registry.nav
    app.jinja_env.globals["editor_home"] = lambda: registry.home
    app.jinja_env.globals["issue_actions"] = registry.issue_actions
    app.jinja_env.globals["panels"] = lambda place, object_id: _panels(registry, place, object_id)
    return registry


def of(app: Flask) -> Registry:
    """The registry of ``app``."""
    registry: Registry = app.extensions["newsletter.registry"]
    return registry


def add_nav(app: Flask, endpoint: str, label: Any, role: str = "editor") -> None:
    """Add an entry to the editor navigation, in registration order."""
    of(app).nav.append(NavItem(endpoint, label, role))


def add_card(app: Flask, template: str, context: CardContext, order: int = 50) -> None:
    """Add a card to the editor home: ``template`` is included with ``context(db_session)``
    as ``card``; cards with a lower ``order`` come first."""
    cards = of(app).cards
    cards.append((order, template, context))
    cards.sort(key=lambda card: card[0])


def add_beat(app: Flask, name: str, task: str, seconds: float) -> None:
    """Run the task named ``task`` every ``seconds`` from the beat process."""
    of(app).beat[name] = {"task": task, "schedule": seconds}


def add_tasks(app: Flask, module: str) -> None:
    """Name a module whose ``@shared_task`` functions the worker must know."""
    of(app).task_modules.append(module)


def set_home(app: Flask, endpoint: str) -> None:
    of(app).home = endpoint


def add_check(app: Flask, check: Callable[[Flask], None]) -> None:
    """Run ``check(app)`` at start-up and in /healthz; it raises ConfigError to refuse."""
    of(app).checks.append(check)


def add_issue_action(app: Flask, endpoint: str, label: Any) -> None:
    """Link an issue's editor page to ``endpoint`` (called with ``issue_id``)."""
    of(app).issue_actions.append((endpoint, label))


def add_sent_check(app: Flask, check: Callable[[Session, int], bool]) -> None:
    """Count an issue as sent (its content frozen) whenever ``check(db_session, issue_id)``."""
    of(app).sent_checks.append(check)


def add_erase_hook(app: Flask, hook: Callable[[Session, int, str], None]) -> None:
    """Let ``hook(db_session, subscriber_id, address)`` remove a package's copies of a person's
    data when subscribers erases them (same transaction)."""
    of(app).erase_hooks.append(hook)


def erased(db_session: Session, subscriber_id: int, address: str) -> None:
    """Tell every package that the person behind ``subscriber_id`` and ``address`` is erased."""
    for hook in of(db_session.info["app"]).erase_hooks:
        hook(db_session, subscriber_id, address)


def add_latest_issue(app: Flask, provider: LatestIssue) -> None:
    """Tell the welcome email where the latest sent issue is (``provider``, see Registry)."""
    of(app).latest_issue.append(provider)


def latest_issue(
    app: Flask, db_session: Session, topics: tuple[str, ...], format: str, locale: str
) -> dict[str, str] | None:
    """The latest issue sent to readers, as the first provider that knows one says, or None."""
    for provider in of(app).latest_issue:
        found = provider(db_session, topics, format, locale)
        if found is not None:
            return found
    return None


def add_panel(app: Flask, place: str, template: str, context: PanelContext) -> None:
    """Draw ``template`` with ``panel=context(db_session, object_id)`` on the page of
    ``place`` (one of PANEL_PLACES), unless the context is None."""
    if place not in PANEL_PLACES:
        raise ValueError(f"no page draws panels of {place!r}")
    of(app).panels.setdefault(place, []).append((template, context))


def _panels(registry: Registry, place: str, object_id: int) -> list[tuple[str, dict[str, Any]]]:
    from core import db

    drawn = []
    for template, context in registry.panels.get(place, []):
        panel = context(db.session(), object_id)
        if panel is not None:
            drawn.append((template, panel))
    return drawn
