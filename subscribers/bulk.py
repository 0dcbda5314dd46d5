"""CSV import rows against the database: sorted into new, present and blocked, and the new
ones inserted in bulk, with one consent event each.

Multi-row statements, not one round trip per row: an import of 100,000 rows takes seconds.
On PostgreSQL each column travels as one array parameter (``unnest``), so the statement
stays short and the same for every batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import cast

from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db import utcnow
from subscribers.csvfile import ImportRow
from subscribers.models import ConsentEvent
from subscribers.models import Subscriber
from subscribers.models import Suppression
from subscribers.service import BLOCKED_STATUSES
from subscribers.service import Consent
from subscribers.service import new_nonce

# Statuses an import leaves alone and counts as refused rather than as already present.
REFUSED_BY_IMPORT = ("unsubscribed", *BLOCKED_STATUSES)
# Small enough that PostgreSQL looks each chunk up in the unique index rather than scanning
# the table (with 500 values it scans, and an import of 100,000 rows slows to minutes).
LOOKUP_CHUNK = 100


@dataclass
class ImportTally:
    """How the rows of an import were (or would be) handled."""

    new: int = 0
    existing: int = 0
    blocked: int = 0
    blocked_lines: list[int] = field(default_factory=list)
    existing_lines: list[int] = field(default_factory=list)


def sort_import_rows(
    db_session: Session, rows: Sequence[ImportRow]
) -> tuple[list[ImportRow], ImportTally]:
    """Split rows into those to insert and those to leave alone (present or blocked)."""
    hashes = [row.email_hash for row in rows]
    present = _existing(db_session, hashes)
    suppressed = _suppressed(db_session, hashes)
    tally, fresh = ImportTally(), []
    for row in rows:
        status = present.get(row.email_hash)
        if row.email_hash in suppressed or status in REFUSED_BY_IMPORT:
            tally.blocked += 1
            tally.blocked_lines.append(row.line)
        elif status is not None:
            tally.existing += 1
            tally.existing_lines.append(row.line)
        else:
            tally.new += 1
            fresh.append(row)
    return fresh, tally


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def _existing(db_session: Session, hashes: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(hashes):
        query = select(Subscriber.email_hash, Subscriber.status).where(
            Subscriber.email_hash.in_(chunk)
        )
        found.update({hashed: status for hashed, status in db_session.execute(query) if hashed})
    return found


def _suppressed(db_session: Session, hashes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(hashes):
        query = select(Suppression.email_hash).where(Suppression.email_hash.in_(chunk))
        found.update(db_session.scalars(query))
    return found


def import_rows(
    db_session: Session, rows: Sequence[ImportRow], consent: Consent, default_locale: str
) -> ImportTally:
    """Insert the rows whose address is new, as active, with one consent event each.

    Multi-row INSERTs, not one round trip per row. The subscriber INSERT skips addresses that
    are already present (ON CONFLICT DO NOTHING) instead of looking every address up first:
    during a large import the table grows faster than PostgreSQL's statistics, and lookups
    then turn into table scans. Only the few skipped rows are looked up, to be counted.
    Present addresses are left as they are; unsubscribed, bounced and suppressed ones are
    never reactivated.
    """
    tally = ImportTally()
    suppressed = _suppressed(db_session, [row.email_hash for row in rows])
    candidates = [row for row in rows if row.email_hash not in suppressed]
    inserted = _insert_new(db_session, candidates, default_locale)
    skipped = [row for row in candidates if row.email_hash not in inserted]
    present = _existing(db_session, [row.email_hash for row in skipped])
    for row in rows:
        if row.email_hash in inserted:
            tally.new += 1
        elif row.email_hash in suppressed or present.get(row.email_hash) in REFUSED_BY_IMPORT:
            tally.blocked += 1
            tally.blocked_lines.append(row.line)
        else:
            tally.existing += 1
            tally.existing_lines.append(row.line)
    _record_imports(db_session, list(inserted.values()), consent)
    return tally


def _insert_new(
    db_session: Session, rows: Sequence[ImportRow], default_locale: str
) -> dict[str, int]:
    """INSERT the rows, skipping present addresses; returns {email_hash: id} of those added."""
    if not rows:
        return {}
    table = cast(Table, Subscriber.__table__)
    now = utcnow()
    values = [_subscriber_values(row, now, default_locale) for row in rows]
    if db_session.get_bind().dialect.name == "postgresql":
        statement = _unnest_insert(table, values)
        parameters: Any = None
    else:
        statement, parameters = sqlite_insert(table), values
    statement = statement.on_conflict_do_nothing(index_elements=[table.c.email_hash]).returning(
        table.c.email_hash, table.c.id
    )
    result = db_session.execute(statement, parameters)
    return {email_hash: subscriber_id for email_hash, subscriber_id in result}


def _unnest_insert(table: Table, values: list[dict[str, Any]]) -> Any:
    """One INSERT … SELECT FROM unnest(arrays) for PostgreSQL: one array parameter per column.

    A multi-row VALUES list of 5,000 rows has 65,000 placeholders, which psycopg parses anew
    for every batch; arrays keep the statement short and the same for every batch.
    """
    names = list(values[0])
    columns = []
    for name in names:
        column_type, items = table.c[name].type, [row[name] for row in values]
        if name == "topics":
            # ARRAY would read each tuple as a nested array: pass TopicSet's stored text instead.
            column_type, items = String(), [",".join(sorted(set(item))) for item in items]
        parameter = bindparam(f"column_{name}", items, type_=ARRAY(column_type))
        columns.append(func.unnest(parameter).label(name))
    return postgresql_insert(table).from_select(names, select(*columns))


def _record_imports(db_session: Session, ids: list[int], consent: Consent) -> None:
    """One consent event per imported subscriber, all alike but for the subscriber."""
    if not ids:
        return
    event = {
        "created_at": utcnow(),
        "action": "import",
        "source": consent.source,
        "actor": consent.actor,
        "note": consent.note,
        "form_version": consent.form_version,
        "changes": {"status": [None, "active"]},
    }
    if db_session.get_bind().dialect.name != "postgresql":
        rows = [{"subscriber_id": subscriber_id, **event} for subscriber_id in ids]
        db_session.execute(insert(ConsentEvent), rows)
        return
    # As for the subscribers: one array parameter rather than thousands of placeholders.
    table = cast(Table, ConsentEvent.__table__)
    subscriber_ids = bindparam("subscriber_ids", ids, type_=ARRAY(table.c.subscriber_id.type))
    columns = [func.unnest(subscriber_ids)] + [
        bindparam(f"event_{name}", value, type_=table.c[name].type) for name, value in event.items()
    ]
    names = ["subscriber_id", *event]
    db_session.execute(insert(table).from_select(names, select(*columns)))


def _subscriber_values(row: ImportRow, now: Any, default_locale: str) -> dict[str, Any]:
    return {
        "email": row.email,
        "email_hash": row.email_hash,
        "name": row.name,
        "organisation": row.organisation,
        "locale": row.locale or default_locale,
        "status": "active",
        "format": row.format or ("digest" if row.member else "full"),
        "topics": row.topics,
        "member": row.member,
        "created_at": now,
        "confirmed_at": now,
        "confirm_nonce": new_nonce(),
        "link_nonce": new_nonce(),
    }
