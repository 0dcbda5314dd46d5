"""``python -m inbound.demo_bounce``: the demo's round trip through the inbound receiver.

After ``make demo`` has sent its issue with VERP return paths, this writes the delivery report a
relay would send when one reader's server refuses the address (RFC 3464, 550 5.1.1), mails it
over SMTP to the running receiver at that delivery's own return path, and prints what became of
the reader. It exits 1 when the reader was not marked bounced.
"""

from __future__ import annotations

import smtplib
import sys

from sqlalchemy import select

from campaigns.models import Delivery
from core import create_app
from core import db
from mailer import verp
from subscribers.models import Subscriber


def report(address: str, return_path: str) -> bytes:
    """The RFC 3464 report a Postfix relay writes about ``address`` refused for good."""
    boundary = "demo-report"
    text = f"""From: MAILER-DAEMON@relay.example.org (Mail Delivery System)
To: {return_path}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=utf-8

<{address}>: host mx.example.net said: 550 5.1.1 User unknown

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.org

Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{address}>: Recipient address rejected: User unknown

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode()


def main() -> None:
    app = create_app()
    with app.app_context():
        session = db.session()
        row = session.execute(
            select(Delivery.id, Subscriber.id, Subscriber.email)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.status == "sent")
            .order_by(Delivery.id)
            .limit(1)
        ).first()
        session.rollback()
    if row is None:
        sys.exit("no sent delivery to bounce")
    delivery_id, subscriber_id, address = row
    return_path = verp.return_path(app.config, delivery_id)
    host, port = str(app.config["INBOUND_HOST"]), int(app.config["INBOUND_PORT"])
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail("", [return_path], report(address, return_path))
    # The receiver answers 250 only after it has committed: the reader's status is final now.
    with app.app_context():
        status = db.session().scalar(
            select(Subscriber.status).where(Subscriber.id == subscriber_id)
        )
    print(
        f"a delivery report for {address} mailed to {return_path} at the inbound receiver "
        f"({host}:{port}): the reader is now {status}"
    )
    if status != "bounced":
        sys.exit(1)


if __name__ == "__main__":
    main()
