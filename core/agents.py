"""Browsers as people name them: a user agent shortened to browser and system.

"Chrome 120 · Windows", "Mobile Safari 17 · iOS", "WeChat Browser 8 · iOS": read with
ua-parser (the rules of Browserscope, kept up to date by the ua-parser project) rather than a
hand-written list. Used for an editor's own sessions and for subscribers' consent history.
"""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse


@lru_cache(maxsize=1024)
def names(user_agent: str) -> tuple[str, ...]:
    """(browser with its major version, system), either left out when it is not known."""
    found = parse(user_agent[:1000])
    said: list[str] = []
    agent, system = found.user_agent, found.os
    if agent is not None and agent.family != "Other":
        said.append(f"{agent.family} {agent.major}" if agent.major else agent.family)
    if system is not None and system.family != "Other":
        said.append(system.family)
    return tuple(said)


def short(user_agent: str | None) -> str:
    """ "Chrome 120 · Windows", or "" when the user agent names nothing known."""
    return " · ".join(names(user_agent)) if user_agent else ""
