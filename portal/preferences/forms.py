from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length

from portal.forms import time_zone_choices


class TimeZoneForm(FlaskForm):
    """The person's own time zone: times are shown to them in it, and a visit in the
    business's zone gets their time beside it when the two differ."""

    time_zone = SelectField(
        "Your time zone", choices=time_zone_choices,
        description="Visits are shown in the business's time zone; when yours differs, your "
        "time is shown beside it. Message and log times are in your zone.",
    )


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
