"""Forms of the public pages and the editor's subscriber pages (CSRF on every one that posts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from flask_wtf.file import FileRequired
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import Field
from wtforms import RadioField
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms import widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.validators import ValidationError

from subscribers import service
from subscribers.models import STATUSES
from subscribers.topics import FORMAT_LABELS
from subscribers.topics import LANGUAGE_LABELS
from subscribers.topics import STATUS_LABELS
from subscribers.topics import topic_choices

# Written to the consent record with each change made through these forms; change it
# whenever the wording readers agree to changes.
FORM_VERSION = "subscribe-2025-1"


def options(pairs: Iterable[tuple[str, Any]]) -> list[SelectChoice]:
    """Choices for a select, radio or checkbox field (WTForms wants SelectChoice objects)."""
    return [SelectChoice(value, label) for value, label in pairs]


def no_control_characters(_form: FlaskForm, field: Field) -> None:
    """Refuse line breaks and other control characters (they could split an email header)."""
    if field.data and service.UNSAFE_TEXT.search(field.data):
        raise ValidationError(_l("Use letters, digits and punctuation only, on one line."))


def usable_address(_form: FlaskForm, field: Field) -> None:
    """Check the address and keep its normalised form in ``field.normalised``."""
    try:
        field.normalised = service.normalise(field.data or "")
    except service.AddressError:
        raise ValidationError(
            _l("This is not an email address we can write to. Check it for typing mistakes.")
        ) from None


def at_least_one(_form: FlaskForm, field: Field) -> None:
    if not field.data:
        raise ValidationError(_l("Choose at least one topic."))


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def email_field() -> EmailField:
    return EmailField(
        _l("Email address"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter your email address.")),
            Length(max=254),
            usable_address,
        ],
    )


def honeypot() -> StringField:
    # Hidden from people by CSS and from screen readers; bots that fill every field fill it.
    return StringField(_l("Leave this field empty"), validators=[Optional()])


class ChoicesForm(FlaskForm):
    """The fields the subscribe and preferences forms share."""

    name = StringField(
        _l("Name (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=100), no_control_characters],
    )
    topics = CheckboxesField(_l("Topics"), validators=[at_least_one])
    format = RadioField(
        _l("Format"),
        choices=options((key, label) for key, (label, _hint) in FORMAT_LABELS.items()),
        default="full",
        validators=[InputRequired(_l("Choose a format."))],
    )
    language = RadioField(
        _l("Language of the emails"),
        choices=options(LANGUAGE_LABELS.items()),
        validators=[InputRequired(_l("Choose a language."))],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topics.choices = options(topic_choices())

    def choices(self, organisation: str | None = None) -> service.Choices:
        return service.Choices(
            topics=tuple(self.topics.data or ()),
            format=self.format.data or "full",
            locale=self.language.data or "zh",
            name=self.name.data or None,
            organisation=organisation,
        )


class SubscribeForm(ChoicesForm):
    email = email_field()
    organisation = StringField(
        _l("Organisation (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=200), no_control_characters],
    )
    website = honeypot()


class PreferencesForm(ChoicesForm):
    organisation = StringField(
        _l("Organisation (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=200), no_control_characters],
    )


class LinkForm(FlaskForm):
    email = email_field()
    website = honeypot()


class ButtonForm(FlaskForm):
    """A form that is only a button: it carries the CSRF token."""


# --- editor forms ------------------------------------------------------------------------


def _any(label: Any) -> list[tuple[str, Any]]:
    return [("", label)]


class FilterForm(FlaskForm):
    """The list's search and filters: a GET form, so no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Search"),
        filters=[_strip],
        validators=[Optional(), Length(max=254), no_control_characters],
    )
    status = SelectField(_l("Status"), validators=[Optional()])
    topic = SelectField(_l("Topic"), validators=[Optional()])
    format = SelectField(_l("Format"), validators=[Optional()])
    member = SelectField(
        _l("Member"),
        choices=options([("", _l("all")), ("yes", _l("members")), ("no", _l("not members"))]),
        validators=[Optional()],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status.choices = options(_any(_l("all")) + [(s, STATUS_LABELS[s]) for s in STATUSES])
        self.topic.choices = options(_any(_l("all")) + topic_choices())
        self.format.choices = options(
            _any(_l("all")) + [(key, label) for key, (label, _hint) in FORMAT_LABELS.items()]
        )


class MemberForm(FlaskForm):
    member = BooleanField(_l("Member of the association"))
    organisation = StringField(
        _l("Organisation"),
        filters=[_strip],
        validators=[Optional(), Length(max=200), no_control_characters],
    )


class EraseForm(FlaskForm):
    block = BooleanField(_l("Keep blocking this address from signing up again"), default=True)
    sure = BooleanField(
        _l("I understand that this removes the person's data for good"),
        validators=[DataRequired(_l("Tick the box to confirm the erase."))],
    )


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])
    consent_source = StringField(
        _l("Where and how did these people agree to receive the newsletter?"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Say where the consent comes from; it is kept with every address.")),
            Length(min=5, max=300),
            no_control_characters,
        ],
    )
