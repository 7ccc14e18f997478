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
