from datetime import date

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
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

from portal.phones import e164
from portal.urls import chosen_id

TEXT_LIMIT = 5000


def phone_number(form, field):
    """A phone number someone could dial: what people write ("(555) 010-2030", "+44 20 …")
    is kept as written, as long as it reads as a number."""
    if field.data and field.data.strip() and e164(field.data) is None:
        raise ValidationError("Enter a phone number with its area code, e.g. (555) 010-2030 "
                              "or +44 20 7946 0000.")


def _phone(label: str) -> TelField:
    return TelField(label, validators=[Optional(), Length(max=40), phone_number])


def _text(label: str, limit: int = 200, area: bool = False):
    kind = TextAreaField if area else StringField
    return kind(label, validators=[Optional(), Length(max=limit)])


class HouseholdForm(FlaskForm):
    """A household's contact details, as the household itself keeps them from the portal."""

    first_name = _text("First name", 100)
    last_name = _text("Last name", 100)
    email = EmailField("Email", validators=[Optional(), Email(), Length(max=254)])
    phone = _phone("Phone")
    alt_phone = _phone("Other phone")
    address = _text("Address", 500)
    entry_instructions = _text("Entry instructions", 2000, area=True)
    gate_code = _text("Gate or door code", 100)
    emergency_contact_name = _text("Emergency contact", 200)
    emergency_contact_phone = _phone("Emergency contact's phone")
    vet_name = _text("Vet", 200)
    vet_phone = _phone("Vet's phone")

    FIELDS = ("first_name", "last_name", "email", "phone", "alt_phone", "address",
              "entry_instructions", "gate_code", "emergency_contact_name",
              "emergency_contact_phone", "vet_name", "vet_phone")

    def values(self) -> dict:
        return {name: self[name].data for name in self.FIELDS}


class ClientEditForm(HouseholdForm):
    """The admin team's edit of a client: the household's details, its name and the
    business's own notes."""

    name = StringField("Household name", validators=[DataRequired(), Length(max=200)])
    notes = _text("Notes (never shown to the household)", TEXT_LIMIT, area=True)

    FIELDS = ("name", *HouseholdForm.FIELDS, "notes")


class ClientForm(FlaskForm):
    name = StringField("Household name", validators=[DataRequired(), Length(max=200)])
    first_name = _text("First name", 100)
    last_name = _text("Last name", 100)
    email = EmailField("Email", validators=[Optional(), Email(), Length(max=254)])
    phone = _phone("Phone")
    address = StringField("Address", validators=[Optional(), Length(max=500)])
    entry_instructions = _text("Entry instructions", 2000, area=True)
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])
    pet_name = StringField("First pet's name", validators=[Optional(), Length(max=100)])
    pet_species = StringField("Species", default="Dog", validators=[Optional(), Length(max=50)])


class PetForm(FlaskForm):
    name = StringField("Pet's name", validators=[DataRequired(), Length(max=100)])
    species = StringField("Species", default="Dog", validators=[DataRequired(), Length(max=50)])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)])


class PetCareForm(FlaskForm):
    """A pet's care notes: what the household may edit of its pets."""

    notes = _text("Care notes", 2000, area=True)
    feeding_notes = _text("Feeding", 2000, area=True)
    medication_notes = _text("Medication", 2000, area=True)

    FIELDS = ("notes", "feeding_notes", "medication_notes")

    def values(self) -> dict:
        return {name: self[name].data for name in self.FIELDS}


class PetEditForm(PetCareForm):
    name = StringField("Pet's name", validators=[DataRequired(), Length(max=100)])
    species = StringField("Species", validators=[DataRequired(), Length(max=50)])
    breed = _text("Breed", 100)
    birthday = DateField("Birthday", validators=[Optional()])
    photo = FileField("Choose a photo")
    remove_photo = BooleanField("Remove the photo")

    FIELDS = ("name", "species", "breed", "birthday", *PetCareForm.FIELDS)
    # Today where the business is (set by the route); a birthday may not be after it.
    today: date | None = None

    def validate_birthday(self, field):
        if field.data and field.data > (self.today or date.today()):
            raise ValidationError("The birthday cannot be in the future.")


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
