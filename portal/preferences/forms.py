from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, ValidationError

from portal.forms import time_zone_choices
from portal.hours import parse_time


class TimeZoneForm(FlaskForm):
    """The person's own time zone: times are shown to them in it, and a visit in the
    business's zone gets their time beside it when the two differ."""

    time_zone = SelectField(
        "Your time zone", choices=time_zone_choices,
        description="Visits are shown in the business's time zone; when yours differs, your "
        "time is shown beside it. Message and log times are in your zone.",
    )


class QuietHoursForm(FlaskForm):
    """Hours without notifications: what arrives then goes as one summary when they end."""

    enabled = BooleanField("Hold notifications during quiet hours")
    quiet_from = StringField("Quiet from", default="22:00")
    quiet_until = StringField("Quiet until", default="07:00")

    def validate_quiet_from(self, field):
        if self.enabled.data:
            _time_of(field, "Give the time your quiet hours start, such as 22:00.")

    def validate_quiet_until(self, field):
        if not self.enabled.data:
            return
        ends = _time_of(field, "Give the time your quiet hours end, such as 07:00.")
        if not self.quiet_from.errors and ends == _time_of(self.quiet_from, ""):
            raise ValidationError("Quiet hours end at another time than they start.")

    def times(self) -> tuple[str, str]:
        """The two times as the portal keeps them, "07:00" however they were typed."""
        return (_time_of(self.quiet_from, "").strftime("%H:%M"),
                _time_of(self.quiet_until, "").strftime("%H:%M"))


def _time_of(field, refusal: str):
    try:
        return parse_time(field.data or "")
    except ValueError:
        raise ValidationError(refusal) from None


class PhoneNumberForm(FlaskForm):
    """A number to get texts at: a code is texted to it first."""

    phone = TelField(
        "Mobile number", validators=[DataRequired("Enter the mobile number to text."),
                                     Length(max=40)],
        description="A US number with its area code, or + and the country code.",
    )


class PhoneCodeForm(FlaskForm):
    """The code texted to the new number, typed back."""

    code = StringField(
        "Code from the text", validators=[DataRequired("Enter the 6-digit code from the text."),
                                          Length(max=20)],
    )
