"""Forms that more than one blueprint shows; a blueprint's own forms are in its forms.py."""

from zoneinfo import available_timezones

from flask import current_app, request
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    MultipleFileField,
    SelectChoice,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from portal.services.uploads import PreparedFile, Upload, UploadError, prepare

# Zones by region (America/Chicago under America); the old aliases (US/Central, EST5EDT) and
# bare abbreviations are left out: each place once, by the name the zone database keeps.
_REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
            "Europe", "Indian", "Pacific")


def time_zone_choices() -> dict[str, list[SelectChoice]]:
    """The business's zone (Portal Settings) and a person's own (their Notifications page)."""
    zones = sorted(name for name in available_timezones() if name.split("/")[0] in _REGIONS)
    groups: dict[str, list[SelectChoice]] = {"UTC": [SelectChoice("UTC", "UTC")]}
    for name in zones:
        region, _, place = name.partition("/")
        groups.setdefault(region, []).append(SelectChoice(name, place.replace("_", " ")))
    return groups


def _normalize(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


class LoginAccountForm(FlaskForm):
    """A login for a person: a client's household member (on the client's page) or a staff
    member (on the Staff page). They choose their own password from the invitation email."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField(
        "Email", validators=[DataRequired(), Email(), Length(max=254)],
        description="The invitation goes here, with a link to choose a password. "
                    "It is also what they log in with.",
    )
    phone = TelField("Mobile phone", validators=[Optional(), Length(max=40)])


class ChosenFiles:
    """A form's files field (`files`), read as uploads once."""

    _uploads: list[Upload] | None = None

    def uploads(self) -> list[Upload]:
        """The chosen files; a file input left empty sends one nameless, empty part."""
        if self._uploads is None:
            # One byte over the limit is enough to tell the file is too large.
            limit = current_app.config["UPLOAD_MAX_FILE_BYTES"] + 1
            self._uploads = []
            for part in request.files.getlist(self.files.name):
                data = part.stream.read(limit)
                if part.filename or data:
                    self._uploads.append(Upload(part.filename or "", data, part.mimetype))
        return self._uploads


class MessageForm(ChosenFiles, FlaskForm):
    """The composer of every feed (portal/feed_component)."""

    text = TextAreaField("Message", filters=[_normalize])
    files = MultipleFileField("Attach photos or files")
    # Which page the composer was on (portal/services/composers.py).
    composer = HiddenField()
    # New with every composer shown: the same send arriving twice makes one message.
    send_key = HiddenField()
    # "Send later": when, in the business's zone (services.send_later.send_time reads it).
    send_at = StringField("Send at")
    # The saved reply inserted, whose files go with the message.
    saved_reply = HiddenField()
    # The visit report answered (its card's Reply): the message is linked to that visit.
    reply_to = HiddenField()

    def validate_text(self, field):
        limit = current_app.config["MESSAGE_MAX_LENGTH"]
        if not field.data.strip() and not self.uploads():
            raise ValidationError("Write a message before sending.")
        if len(field.data) > limit:
            raise ValidationError(
                f"Messages can be at most {limit:,} characters; this one has {len(field.data):,}."
            )


class VisitReportForm(ChosenFiles, FlaskForm):
    """A visit's report: the checklist's answers (read from the request by item), a note,
    photos. The send key makes a retried send one report."""

    note = TextAreaField("Note for the client", filters=[_normalize])
    files = MultipleFileField("Photos")
    send_key = HiddenField()

    def validate_note(self, field):
        limit = current_app.config["MESSAGE_MAX_LENGTH"]
        if len(field.data) > limit:
            raise ValidationError(
                f"Keep the note to {limit:,} characters; this one has {len(field.data):,}.")


class ReportNoteForm(FlaskForm):
    """The admin team's change to a report's note."""

    note = TextAreaField("Note for the client", filters=[_normalize])

    def validate_note(self, field):
        limit = current_app.config["MESSAGE_MAX_LENGTH"]
        if len(field.data) > limit:
            raise ValidationError(f"Keep the note to {limit:,} characters.")


class RejectionForm(FlaskForm):
    """Why a held message is not approved: its author is sent the note."""

    note = TextAreaField("Note to the author", filters=[_normalize])

    def validate_note(self, field):
        if not field.data.strip():
            raise ValidationError("Write a note saying why, for its author.")
        if len(field.data) > 2000:
            raise ValidationError("Keep the note under 2,000 characters.")


class ScheduledMessageForm(FlaskForm):
    """A scheduled (or held) message's text and time, changed before it goes."""

    text = TextAreaField("Message", filters=[_normalize])
    send_at = StringField("Send at")
    # Whether it carries files: then it may go without words, as a message with files may.
    has_files = False

    def validate_text(self, field):
        limit = current_app.config["MESSAGE_MAX_LENGTH"]
        if not field.data.strip() and not self.has_files:
            raise ValidationError("Write a message before scheduling it.")
        if len(field.data) > limit:
            raise ValidationError(
                f"Messages can be at most {limit:,} characters; this one has {len(field.data):,}."
            )


def uploaded_photo(field, refusal: str = "Choose a photo (JPEG, PNG, WebP, GIF or HEIC).") \
        -> PreparedFile | None:
    """The photo chosen in a file field, decoded and re-encoded (services.uploads), or None when
    none was chosen; a refused file becomes the field's error (`refusal` for one that is not a
    photo at all)."""
    part = request.files.get(field.name)
    if part is None or not (part.filename or part.content_length):
        return None
    limit = current_app.config["UPLOAD_MAX_FILE_BYTES"]
    data = part.stream.read(limit + 1)
    if not data and not part.filename:
        return None
    try:
        prepared = prepare(Upload(part.filename or "", data, part.mimetype),
                           max_bytes=limit, max_pixels=current_app.config["UPLOAD_MAX_PIXELS"])
    except UploadError as error:
        field.errors = [str(error)]
        return None
    if not prepared.thumbnail:
        field.errors = [refusal]
        return None
    return prepared
