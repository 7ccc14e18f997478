from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from portal.services import accounts
from portal.urls import chosen_id


class ClientForm(FlaskForm):
    name = StringField("Household name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[Optional(), Email(), Length(max=254)])
    phone = TelField("Phone", validators=[Optional(), Length(max=40)])
    address = StringField("Address", validators=[Optional(), Length(max=500)])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])
    pet_name = StringField("First pet's name", validators=[Optional(), Length(max=100)])
    pet_species = StringField("Species", default="Dog", validators=[Optional(), Length(max=50)])


class PetForm(FlaskForm):
    name = StringField("Pet's name", validators=[DataRequired(), Length(max=100)])
    species = StringField("Species", default="Dog", validators=[DataRequired(), Length(max=50)])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])


class LoginAccountForm(FlaskForm):
    """A login for a person: a client's household member or a staff member. They choose their
    own password from the invitation email."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField(
        "Email", validators=[DataRequired(), Email(), Length(max=254)],
        description="The invitation goes here, with a link to choose a password. "
                    "It is also what they log in with.",
    )
    phone = TelField("Mobile phone", validators=[Optional(), Length(max=40)])


class ServiceForm(FlaskForm):
    staff_id = SelectField("Staff member", coerce=chosen_id, validators=[DataRequired()])
    title = StringField("Service", default="Dog walk", validators=[DataRequired(), Length(max=100)])
    date = DateField("Date", validators=[DataRequired()])
    starts = TimeField("Starts", validators=[DataRequired()])
    ends = TimeField("Ends", validators=[DataRequired()])

    def validate_ends(self, field):
        if self.starts.data and field.data and field.data <= self.starts.data:
            raise ValidationError("The end time must be after the start time.")


class PreferredSitterForm(FlaskForm):
    staff_id = SelectField("Staff member", coerce=chosen_id, validators=[DataRequired()])



def create_login(form: LoginAccountForm, role, client_id: int | None = None) -> bool:
    """Invites the person the form describes; on a taken email, says so on the form."""
    try:
        accounts.invite_user(
            current_user.business, current_user, role=role, email=form.email.data,
            name=form.name.data, client_id=client_id, phone=form.phone.data,
        )
    except accounts.AccountError as error:
        form.email.errors.append(str(error))
        return False
    return True


def invited_notice(form: LoginAccountForm) -> str:
    return (f"{form.name.data} was invited: an email to {form.email.data} has a link to "
            "choose a password.")
