from flask_wtf import FlaskForm
from wtforms import BooleanField, FileField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from portal.forms import time_zone_choices

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
