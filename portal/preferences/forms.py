from flask_wtf import FlaskForm
from wtforms import StringField, TelField
from wtforms.validators import DataRequired, Length


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
