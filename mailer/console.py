"""The editor home: an overview card from each package, and a test email through the real path."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import EmailField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import Length

from core import auth
from core import db
from core import registry
from mailer import outbox
from mailer.models import OutboxMessage
from mailer.tasks import enqueue_delivery

bp = Blueprint("console", __name__, url_prefix="/editor")


class TestSendForm(FlaskForm):
    address = EmailField(
        _l("Send a test email to"),
        validators=[DataRequired(), Email(message=_l("Enter an email address.")), Length(max=254)],
    )
    locale = SelectField(
        _l("Language"),
        choices=[SelectChoice("zh", "中文"), SelectChoice("en", "English")],
        default="zh",
    )


def counts_by_status(db_session: Session, column: Any) -> dict[str, int]:
    """How many rows there are of each value of ``column``."""
    rows = db_session.execute(select(column, func.count()).group_by(column))
    return {str(status): int(count) for status, count in rows}


def emails_card(db_session: Session) -> dict[str, Any]:
    return {"counts": counts_by_status(db_session, OutboxMessage.status)}


@bp.route("/", methods=["GET", "POST"])
@auth.login_required()
def home() -> str | Response:
    form = TestSendForm()
    editor = auth.current_editor()
    assert editor is not None
    if form.validate_on_submit():
        with db.transaction() as db_session:
            outbox.queue(
                db_session,
                "test",
                (form.address.data or "").strip(),
                form.locale.data or "zh",
                enqueue_delivery,
                requested_by=editor.email,
            )
        flash(_("The test email is queued. Its status is shown below."), "info")
        return redirect(url_for("console.home"))
    db_session = db.session()
    recent = list(
        db_session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "test")
            .order_by(OutboxMessage.id.desc())
            .limit(10)
        )
    )
    cards = [
        (template, context(db_session)) for _, template, context in registry.of(current_app).cards
    ]
    return render_template(
        "web/console/home.html",
        form=form,
        editor=editor,
        recent=recent,
        cards=cards,
        # While a test email is on its way the page refreshes itself (no script needed).
        refresh=any(message.status in ("queued", "sending") for message in recent),
    )
