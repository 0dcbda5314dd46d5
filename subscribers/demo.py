"""``python -m subscribers.demo``, a step of ``make demo``: the demo's leavers unsubscribe
and one address is suppressed as a hard bounce; prints how many subscribers are in each status."""

from __future__ import annotations

from core.demo import BOUNCED
from core.demo import LEAVERS
from core.demo import READER_DOMAIN


def leave_and_bounce() -> None:
    """Run against the app (``python -c``): the leavers unsubscribe, one address is
    suppressed as a hard bounce; prints how many subscribers are in each status."""
    from sqlalchemy import func
    from sqlalchemy import select

    from core import create_app
    from core import db
    from subscribers import service
    from subscribers.models import Subscriber

    consent = service.Consent(source="editor", actor="make demo", note="make demo: fictional")
    with create_app().app_context(), db.transaction() as db_session:
        for _, local in LEAVERS:
            subscriber = service.find(db_session, f"{local}@{READER_DOMAIN}")
            if subscriber is None or not service.unsubscribe(db_session, subscriber, consent):
                raise SystemExit(f"demo: {local}@{READER_DOMAIN} could not unsubscribe")
        service.suppress(db_session, f"{BOUNCED[1]}@{READER_DOMAIN}", "hard_bounce", consent)
        rows = db_session.execute(
            select(Subscriber.status, func.count())
            .group_by(Subscriber.status)
            .order_by(Subscriber.status)
        )
        print(", ".join(f"{count} {status}" for status, count in rows))


if __name__ == "__main__":
    leave_and_bounce()
