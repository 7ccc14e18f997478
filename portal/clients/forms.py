from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

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


REPEAT_CHOICES = [
    SelectChoice("none", "Does not repeat"), SelectChoice("daily", "Daily"),
    SelectChoice("weekly", "Weekly on chosen days"), SelectChoice("monthly", "Monthly on the date"),
    SelectChoice("yearly", "Yearly"),
]
WEEKDAY_CHOICES = [SelectChoice(index, name) for index, name in enumerate(
    ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))]
SCOPE_CHOICES = [
    SelectChoice("one", "This visit"), SelectChoice("following", "This and following visits"),
    SelectChoice("all", "All visits of the series still to come"),
]


class VisitTimesMixin:
    """Start and end as dates and wall-clock times in the business's zone; the end date may be
    later for overnight stays (left empty, it is the start date)."""

    date = DateField("Start date", validators=[DataRequired()])
    starts = TimeField("Starts", validators=[DataRequired()])
    end_date = DateField("End date", validators=[Optional()],
                         description="Leave empty for a visit on one day.")
    ends = TimeField("Ends", validators=[DataRequired()])

    def validate_ends(self, field):
        end_day = self.end_date.data or self.date.data
        if (self.starts.data and field.data and self.date.data
                and (end_day, field.data) <= (self.date.data, self.starts.data)):
            raise ValidationError("The visit must end after it starts.")


class ServiceForm(VisitTimesMixin, FlaskForm):
    staff_id = SelectField("Staff member", coerce=chosen_id, validators=[Optional()])
    title = StringField("Service", default="Dog walk", validators=[DataRequired(), Length(max=100)])
    repeat = SelectField("Repeat", choices=REPEAT_CHOICES, default="none")
    weekdays = SelectMultipleField("On", choices=WEEKDAY_CHOICES, coerce=int,
                                   validators=[Optional()])
    interval = IntegerField("Every (weeks, days, months or years)", default=1,
                            validators=[Optional(), NumberRange(min=1, max=52)])
    until = DateField("Until", validators=[Optional()])
    count = IntegerField("Or number of visits", validators=[Optional(), NumberRange(min=1,
                                                                                    max=800)])
    confirm_overlap = BooleanField("Schedule anyway, overlapping the visits above")


class EditServiceForm(VisitTimesMixin, FlaskForm):
    staff_id = SelectField("Staff member", coerce=chosen_id, validators=[Optional()])
    title = StringField("Service", validators=[DataRequired(), Length(max=100)])
    scope = SelectField("Change", choices=SCOPE_CHOICES, default="one")
    confirm_overlap = BooleanField("Save anyway, overlapping the visits above")


class ReassignServiceForm(FlaskForm):
    staff_id = SelectField("Staff member", coerce=chosen_id, validators=[Optional()])
    scope = SelectField("Reassign", choices=SCOPE_CHOICES, default="one")
    confirm_overlap = BooleanField("Reassign anyway, overlapping the visits above")


class CancelServiceForm(FlaskForm):
    scope = SelectField("Cancel", choices=SCOPE_CHOICES, default="one")


class PreferredSitterForm(FlaskForm):
    staff_id = SelectField("Staff member", coerce=chosen_id, validators=[DataRequired()])
