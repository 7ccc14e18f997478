"""Attachment bytes, thumbnails and the full view: each behind the policy of its message's feed."""

from pathlib import PurePosixPath

from flask import abort, current_app, render_template, request, send_file
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from portal import policy
from portal.extensions import db
from portal.feed_component.query import IMAGE_SUFFIX, load_item
from portal.files import bp
from portal.models import (
    Attachment,
    AttachmentKind,
    Client,
    DeliveryStatus,
    Message,
    ScheduledMessage,
    ScheduledMessageFile,
    VisitReport,
)
from portal.services.uploads import IMAGE_SUFFIXES, clean_filename
from portal.storage import storage

# Served files never run anything, whatever their bytes say.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Served names are cleaned again (rows from before may hold anything) and kept short: even
# percent-encoded in filename*, the header stays well inside a proxy's header buffer.
NAME_LIMIT = 120


def visible_attachment(token: str, in_thread: bool = False
                       ) -> tuple[Attachment, Message, Client]:
    """The attachment, if the current user may see its message's feed (or, `in_thread`, the
    thread of the visit report it belongs to: policy.report_thread_open); a 404 otherwise."""
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
    policy.require(row is not None and (
        policy.can_view_feed(current_user, row[2], row[1].feed)
        or (in_thread and _in_open_thread(row[1], row[2]))))
    return row


def _in_open_thread(message: Message, client: Client) -> bool:
    """A report's photo, for its writer while its thread is open to them."""
    report = db.session.scalar(select(VisitReport).where(VisitReport.message_id == message.id))
    return report is not None and policy.report_thread_open(
        current_user, client, report.author_id, report.service)


def served_name(attachment: Attachment | ScheduledMessageFile, *,
                thumbnail: bool = False) -> str:
    """The name a saved file gets: the sender's, never the storage key. Photos are stored
    re-encoded: they keep the sender's stem with the extension of what is served."""
    name = clean_filename(attachment.original_name, limit=NAME_LIMIT)
    if attachment.kind != AttachmentKind.IMAGE:
        return name
    if name == clean_filename(""):  # the upload's name for "no name at all"
        name = "photo"
    stem, suffix = _split_image_suffix(name)
    if thumbnail:
        return f"{stem} (thumbnail).webp"
    served = IMAGE_SUFFIX.get(attachment.content_type, "")
    return stem + (suffix if suffix.lower() == served else served)


def _split_image_suffix(name: str) -> tuple[str, str]:
    """("IMG_0042", ".HEIC") from "IMG_0042.HEIC"; a suffix no photo has stays in the stem."""
    suffix = PurePosixPath(name).suffix
    if suffix.lower() not in IMAGE_SUFFIXES:
        return name, ""
    return name[: -len(suffix)], suffix  # never empty: a cleaned name has no leading dot


def _send(key: str, mimetype: str, name: str, *, as_attachment: bool = False):
    try:
        stored = storage().open(key)
    except FileNotFoundError:
        current_app.logger.error("Stored file %s is missing", key)
        abort(404)
    # werkzeug writes the name as RFC 6266 asks (filename*, UTF-8, for a name not in ASCII).
    response = send_file(
        stored.stream, mimetype=mimetype, as_attachment=as_attachment, download_name=name,
        conditional=False, etag=False, max_age=None,
    )
    # Never kept by the browser: a private photo does not stay on a shared computer's disk,
    # and access that ends leaves no copy behind. With nothing stored there is nothing to
    # revalidate, so no validators either.
    response.content_length = stored.size
    response.headers["Cache-Control"] = "no-store"
    del response.headers["Last-Modified"]
    response.headers.update(FILE_HEADERS)
    # Ranges still work without validators: a large file's interrupted download resumes.
    try:
        return response.make_conditional(request, accept_ranges=True,
                                         complete_length=stored.size)
    except HTTPException:
        # A range that cannot be served (416): the file send_file opened is never sent.
        response.close()
        raise


@bp.route("/files/<token>")
@login_required
def download(token: str):
    """Images as themselves (our re-encoded raster only); every other file as a download."""
    attachment, _, _ = visible_attachment(token, in_thread=True)
    if attachment.kind == AttachmentKind.IMAGE:
        return _send(attachment.storage_key, attachment.content_type, served_name(attachment))
    return _send(
        attachment.storage_key, "application/octet-stream", served_name(attachment),
        as_attachment=True,
    )


@bp.route("/files/<token>/thumbnail")
@login_required
def thumbnail(token: str):
    attachment, _, _ = visible_attachment(token, in_thread=True)
    policy.require(attachment.thumbnail_key is not None)
    return _send(attachment.thumbnail_key, "image/webp", served_name(attachment, thumbnail=True))


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


# --- files of messages not posted yet (scheduled, or awaiting approval) -------------------------

def visible_waiting_file(token: str) -> ScheduledMessageFile:
    """The file, while its message waits, if the current user may see that message (its
    author, the admin team); a 404 otherwise."""
    row = db.session.execute(
        select(ScheduledMessageFile, ScheduledMessage, Client)
        .join(ScheduledMessage,
              ScheduledMessageFile.scheduled_message_id == ScheduledMessage.id)
        .join(Client, ScheduledMessage.client_id == Client.id)
        .where(ScheduledMessageFile.token == token,
               ScheduledMessageFile.business_id == current_user.business_id,
               ScheduledMessage.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)))
    ).one_or_none()
    policy.require(row is not None and policy.can_manage_scheduled(current_user, row[2], row[1]))
    return row[0]


@bp.route("/waiting-files/<token>")
@login_required
def waiting_file(token: str):
    file = visible_waiting_file(token)
    if file.kind == AttachmentKind.IMAGE:
        return _send(file.storage_key, file.content_type, served_name(file))
    return _send(file.storage_key, "application/octet-stream", served_name(file),
                 as_attachment=True)


@bp.route("/waiting-files/<token>/thumbnail")
@login_required
def waiting_thumbnail(token: str):
    file = visible_waiting_file(token)
    policy.require(file.thumbnail_key is not None)
    return _send(file.thumbnail_key, "image/webp", served_name(file, thumbnail=True))
