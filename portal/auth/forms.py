from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, ValidationError

from portal.services import passwords


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Remember me")
    next = HiddenField()


def password_rules(form, field) -> None:
    """The service's rules, shown on the field; the password is used exactly as typed."""
    if field.data and (problem := passwords.problem_with(field.data)):
        raise ValidationError(problem)


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])


class NewPasswordForm(FlaskForm):
    """Choosing a password from an invitation or reset link."""

    password = PasswordField(
        "New password", validators=[InputRequired(), password_rules],
        description=f"At least {passwords.MIN_LENGTH} characters. A few unrelated words work "
                    "well; spaces and any letters are fine.",
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[InputRequired(), EqualTo("password", "The two passwords are not the same.")],
    )


class ChangePasswordForm(NewPasswordForm):
    current_password = PasswordField(
        "Current password", validators=[InputRequired(), Length(max=passwords.MAX_LENGTH)]
    )
