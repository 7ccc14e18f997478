from datetime import date

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FileField,
    IntegerField,
    MultipleFileField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from portal.forms import ChosenFiles, time_zone_choices
from portal.hours import WEEKDAYS, parse_time

YES_NO = [SelectChoice("no", "No"), SelectChoice("yes", "Yes")]


class PortalSettingsForm(FlaskForm):
    private_messaging_enabled = SelectField(
        "Private Messaging Enabled",
        choices=YES_NO,
        default="no",
        description="A second message feed on each client's account, only between your admin "
        "team and the client. Staff never see these messages or get notified about them.",
    )
    client_read_receipts = SelectField(
        "Read Receipts for Clients",
        choices=YES_NO,
        default="no",
        description="Clients see “Seen” and the time under their own messages once someone "
        "at your business has read them.",
    )
    time_zone = SelectField(
        "Business time zone",
        choices=time_zone_choices,
        default="America/Chicago",
        description="Visits are entered and shown in this zone, where the pets are. Someone whose "
        "own zone differs sees their time beside it.",
    )
    staff_messages_need_approval = SelectField(
        "Staff messages need approval before clients see them",
        choices=YES_NO,
        default="no",
        description="A staff member's message waits, marked “Awaiting approval”, until someone "
        "of your admin team approves it; only then does the client see it and get notified. "
        "The Staff page can set each staff member otherwise. Turned off, messages already "
        "waiting still wait for a decision.",
    )
    staff_access_days = IntegerField(
        "Staff access around visits (days)",
        validators=[InputRequired(), NumberRange(min=0, max=90)],
        description="Staff see a client's Conversation feed while they are the preferred sitter, "
        "and from this many days before each of their visits with the client until this many "
        "days after it ends.",
    )


class BusinessProfileForm(FlaskForm):
    name = StringField(
        "Business name",
        validators=[DataRequired("Enter the business's name."), Length(max=200)],
        description="What your clients and team see: on the login page, at the top of every "
        "page, in emails, and under the app's icon on their phones.",
    )
    logo = FileField(
        "Choose a logo",
        description="JPEG, PNG, WebP, GIF or HEIC; square or wide works best. Shown beside "
        "the name, in emails, and as the installed app's icon.",
    )
    remove_logo = BooleanField("Remove the logo")


class VisitReportSettingsForm(FlaskForm):
    checklist = TextAreaField(
        "Visit report checklist",
        description="One item per line, such as Walked, Fed, Water, Medication given. Each is "
        "answered Yes, No or n/a in every report. Left empty, reports have no checklist.",
    )
    record_location = SelectField(
        "Record location at check-in",
        choices=YES_NO,
        default="no",
        description="Start visit keeps where the sitter's phone is (if they allow it). Only "
        "your admin team sees it; clients never do.",
    )


class BusinessHoursForm(FlaskForm):
    """The week's opening hours, the days closed, and what clients are told meanwhile. Fields
    per weekday (open_0, opens_0, closes_0 for Monday ...) are added below the class."""

    closed_days = TextAreaField(
        "Closed days",
        description="One per line, the date first: 2026-12-25 Christmas Day. Closed all day, "
        "whatever the week says.",
    )
    away_message = StringField(
        "Away message",
        validators=[Length(max=300)],
        description="Said to clients after “We're closed until Monday 8:00 AM.”, for example "
        "“Urgent? Call (312) 555-0100.”",
    )
    auto_reply = SelectField(
        "Automatic reply", choices=YES_NO, default="yes",
        description="A client who writes while you are closed gets one automatic reply in the "
        "feed, at most once every 12 hours.",
    )

    def days(self):
        """(weekday name, open box, opening field, closing field) for Monday to Sunday."""
        return [(name, self[f"open_{day}"], self[f"opens_{day}"], self[f"closes_{day}"])
                for day, name in enumerate(WEEKDAYS)]

    def weekly_hours(self) -> dict[str, list[str]] | None:
        """What the week's fields say, as Business.weekly_hours keeps it (None: no day open)."""
        weekly = {str(day): [_hh_mm(opens.data), _hh_mm(closes.data)]
                  for day, (_, open_box, opens, closes) in enumerate(self.days()) if open_box.data}
        return weekly or None

    def closed_day_list(self) -> list[dict] | None:
        """The closed days typed, in order, as Business.closed_days keeps them."""
        found = {}
        for line in (self.closed_days.data or "").splitlines():
            if line.strip():
                day, _, label = line.strip().partition(" ")
                found[date.fromisoformat(day)] = label.strip()[:100]
        return [{"day": day.isoformat(), "label": label}
                for day, label in sorted(found.items())] or None

    def validate_closed_days(self, field):
        for number, line in enumerate((field.data or "").splitlines(), start=1):
            if not line.strip():
                continue
            day = line.strip().partition(" ")[0]
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValidationError(
                    f"Line {number}: start with the date as 2026-12-25, then what it is.") from None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for name, open_box, opens, closes in self.days():
            if not open_box.data:
                continue
            try:
                opening, closing = parse_time(opens.data or ""), parse_time(closes.data or "")
            except ValueError:
                opens.errors = [*opens.errors, f"Give the times {name} opens and closes."]
                valid = False
                continue
            if closing <= opening:
                closes.errors = [*closes.errors, f"{name} must close after it opens."]
                valid = False
        return valid


def _hh_mm(value: str) -> str:
    """A time as the portal keeps it, "08:00", however it was typed ("8:00")."""
    return parse_time(value).strftime("%H:%M")


for _day, _name in enumerate(WEEKDAYS):
    setattr(BusinessHoursForm, f"open_{_day}", BooleanField(f"Open on {_name}"))
    setattr(BusinessHoursForm, f"opens_{_day}", StringField(f"{_name} opens", default="08:00"))
    setattr(BusinessHoursForm, f"closes_{_day}", StringField(f"{_name} closes", default="18:00"))


class SavedReplyForm(ChosenFiles, FlaskForm):
    """A saved reply: what the composer's picker shows, and the text it inserts."""

    title = StringField("Title", validators=[DataRequired("Give it a title."), Length(max=100)],
                        description="What your team looks for in the picker.")
    text = TextAreaField(
        "Text", validators=[DataRequired("Write the reply.")],
        description="Placeholders are filled in for each client: {first_name}, {pet_names}, "
        "{next_visit_date} and {next_visit_sitter}.",
    )
    files = MultipleFileField("Add files", description="Photos or files sent with the reply.")

    def validate_text(self, field):
        limit = current_app.config["MESSAGE_MAX_LENGTH"]
        if len(field.data) > limit:
            raise ValidationError(f"A reply can be at most {limit:,} characters.")
