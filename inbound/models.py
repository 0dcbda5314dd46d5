"""The mail event ledger: every bounce, complaint, mailed unsubscribe and auto-reply, once."""

from __future__ import annotations
