"""What the importer says about a file: the refusal, the warnings, and their wording helpers.

Both keep their message id and values apart (``msgid``, ``params``; every message id is
marked with ``N_``), so that pages can show them in the editor's language while ``str()``
gives the English sentence the command line prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from core.i18n import N_

# The numbers an issue can have: the magazine is at 361, and the archive's addresses and
# the database's integer column need a bound.
ISSUE_NUMBERS = range(1, 100_000)


class NotAnIssue(ValueError):
    """The file is refused; ``str(error)`` is one plain English sentence saying why.

    ``msgid`` and ``params`` let a page show the same sentence in the editor's language.
    """

    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(msgid % params)


@dataclass(frozen=True)
class ParseWarning:
    """Something an editor should check about a file that was read; ``str()`` is in English.

    Kept as a message id and its values, so that pages can show it in the editor's language
    and a stored issue keeps it translatable (see :meth:`to_dict`).
    """

    msgid: str
    params: Mapping[str, str | int] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.msgid % self.params

    def to_dict(self) -> dict[str, Any]:
        """The warning as JSON can hold it: ``{"msgid": ..., "params": {...}}``."""
        return {"msgid": self.msgid, "params": dict(self.params)}


def number_out_of_range(number: int) -> ParseWarning:
    """The warning for an issue number that cannot be one (0, negative, too large)."""
    return ParseWarning(
        N_("The issue number %(value)s is not one from 1 to 99999; it was left empty."),
        {"value": shortened(str(number))},
    )


def shortened(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with …, for quoting a value in a warning."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
