from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField
from wtforms.validators import InputRequired, NumberRange

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
