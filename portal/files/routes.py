"""Attachment bytes, thumbnails and the full view: each behind the policy of its message's feed."""

from io import BytesIO

from flask import abort, current_app, render_template, send_file
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import policy
from portal.extensions import db
from portal.feeds.query import load_item
from portal.files import bp
from portal.models import Attachment, AttachmentKind, Client, Message
from portal.storage import storage

# Served files never run anything, whatever their bytes say.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def visible_attachment(token: str) -> tuple[Attachment, Message, Client]:
    """The attachment, if the current user may see its message's feed; a 404 otherwise."""
    row = db.session.execute(
        select(Attachment, Message, Client)
        .join(Message, Attachment.message_id == Message.id)
        .join(Client, Message.client_id == Client.id)
        .where(
            Attachment.token == token,
            Attachment.business_id == current_user.business_id,
            Message.deleted_at.is_(None),
        )
    ).one_or_none()
    policy.require(row is not None and policy.can_view_feed(current_user, row[2], row[1].feed))
    return row


def _send(key: str, mimetype: str, *, download_name: str | None = None):
    path = storage().path(key)
    try:
        source = path if path is not None else BytesIO(storage().read(key))
        if path is not None and not path.exists():
            raise FileNotFoundError(path)
    except FileNotFoundError:
        current_app.logger.error("Stored file %s is missing", key)
        abort(404)
    response = send_file(
        source, mimetype=mimetype, as_attachment=download_name is not None,
        download_name=download_name, conditional=True, etag=True, max_age=0,
    )
    # Revalidated every time, so access that ends stops the cached copy too.
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers.update(FILE_HEADERS)
    return response


@bp.route("/files/<token>")
@login_required
def download(token: str):
    """Images as themselves (our re-encoded raster only); every other file as a download."""
    attachment, _, _ = visible_attachment(token)
    if attachment.kind == AttachmentKind.IMAGE:
        return _send(attachment.storage_key, attachment.content_type)
    return _send(
        attachment.storage_key, "application/octet-stream",
        download_name=attachment.original_name,
    )


@bp.route("/files/<token>/thumbnail")
@login_required
def thumbnail(token: str):
    attachment, _, _ = visible_attachment(token)
    policy.require(attachment.thumbnail_key is not None)
    return _send(attachment.thumbnail_key, "image/webp")


@bp.route("/files/<token>/view")
@login_required
def view(token: str):
    """A photo at full size, with its message's other photos a step away (no JavaScript needed)."""
    attachment, message, client = visible_attachment(token)
    policy.require(attachment.kind == AttachmentKind.IMAGE)
    item = load_item(message.id, current_user, client, message.feed)
    tokens = [image.token for image in item.images]
    index = tokens.index(token)
    return render_template(
        "files/view.html", client=client, feed=message.feed, item=item,
        image=item.images[index], index=index,
        previous=tokens[index - 1] if index > 0 else None,
        next=tokens[index + 1] if index + 1 < len(tokens) else None,
    )
