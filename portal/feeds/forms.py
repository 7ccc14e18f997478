from flask import current_app
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import ValidationError


def _normalize(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


class MessageForm(FlaskForm):
    text = TextAreaField("Message", filters=[_normalize])

    def validate_text(self, field):
        limit = current_app.config["MESSAGE_MAX_LENGTH"]
        if not field.data.strip():
            raise ValidationError("Write a message before sending.")
        if len(field.data) > limit:
            raise ValidationError(
                f"Messages can be at most {limit:,} characters; this one has {len(field.data):,}."
            )
