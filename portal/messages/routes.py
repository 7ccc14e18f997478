from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from htmx_flask import make_response as htmx_response
from sqlalchemy import select

from portal import policy, throttle
from portal.clock import business_day_and_time
from portal.extensions import db
from portal.feed_component.query import load_item, posted_item
from portal.feed_component.views import composer_context, render_client_page
from portal.forms import MessageForm, RejectionForm, ScheduledMessageForm
from portal.fragments import wants_fragment
from portal.hours import Hours
from portal.loaders import (
    client_of_business,
    message_of_business,
    saved_reply_of_business,
    scheduled_of_business,
    visible_feed,
)
from portal.messages import bp
from portal.models import VIA_REPORT, DeliveryStatus, Message, SavedReply, utcnow
from portal.notifications import outbox
from portal.services import away, composers, messages, saved_replies, send_later
from portal.services.uploads import UploadError
from portal.storage import StorageUnavailable
from portal.text import and_list
from portal.urls import FEED_NAMES, as_id

LEFT_PAGE = (
    "Not sent: you opened another feed before this message went. If it belongs in this "
    "feed, press {} again."
)


NOT_SENT_YET = (
    "Your previous message was already sent. This text was not sent yet: check it and press "
    "Send again (attach any files again too)."
)
SCHEDULE = "schedule"  # the composer's Schedule button (name "action")
AT_OPENING = "opening"  # its Send at opening button, while the business is closed
APPROVE = "approve"  # the edit page's Approve button, for the admin team
ALREADY_GONE = ("That scheduled message is no longer waiting: it was sent, is being sent, or "
                "was cancelled.")
TIME_CHOSEN = ("You chose a time to send it later: press Schedule, or clear the time to send it "
               "now.")
NOT_SCHEDULED_YET = (
    "Your previous message was already scheduled. This text was not scheduled yet: check it and "
    "press Schedule again."
)
NOT_HELD_YET = (
    "Your previous message was already sent for approval. This text was not sent yet: check it "
    "and press Send again (attach any files again too)."
)
NO_LONGER_HELD = "That message no longer awaits approval: someone approved or rejected it first."
CHANGED_SINCE = ("That message was changed after you opened it: read it again before approving or "
                 "rejecting it.")
NOW_AWAITS_APPROVAL = ("Not sent: your messages now need approval, so it waits for the admin "
                       "team's.")
UNSENT = "Message unsent. Nobody was notified, and its text is back in the box to send again."
FILES_GONE = " Its files were removed with it: attach them again to send them."
FILES_NOT_STORED = ("Not sent: the portal could not store files just now. Your text is kept here; "
                    "press Send again in a minute (attach any files again too).")
TOO_LATE_TO_UNSEND = (
    "Too late to unsend: its notifications have gone out. You can still delete it from the "
    "portal."
)


def feed_url(client_id: int, feed, message_id: int | None = None) -> str:
    url = url_for("feeds.show", client_id=client_id, feed_name=feed.value)
    return f"{url}#message-{message_id}" if message_id else url


@bp.route(f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>/messages", methods=["POST"])
@login_required
def create(client_id: int, feed_name: str):
    client, feed = visible_feed(current_user, client_id, feed_name)
    policy.require(policy.can_post(current_user, client, feed))
    form = MessageForm()
    if not form.validate_on_submit():
        return _refused(client, feed, form)
    try:
        return _create(client, feed, form)
    except StorageUnavailable:
        # Nothing was written: the service removed what it stored and rolled back.
        form.files.errors = [FILES_NOT_STORED]
        return _refused(client, feed, form, status=503)


def _create(client, feed, form: MessageForm):
    send_key = form.send_key.data if composers.is_token(form.send_key.data) else None
    if earlier := messages.sent_with(current_user, send_key):
        return _already_sent(client, feed, earlier, form)
    if composers.is_retired(current_user, form.composer.data):
        # The page was left for another feed: what was typed may be meant for that one.
        form.composer.errors = [LEFT_PAGE.format(feed.send_label)]
        form.composer.data = None
        return _refused(client, feed, form, status=409)
    saved = _saved_reply_chosen(form, client, feed)
    if refusal := throttle.message_refusal(
            current_user, len(form.uploads()) + len(saved.files if saved else ())):
        field = form.files if refusal.reason == throttle.TOO_MANY_FILES else form.text
        field.errors = [refusal.message]
        return _refused(client, feed, form, refusal)
    action = request.form.get("action")
    reply_to_id = replied_report(form.reply_to.data, client, feed)
    at = None
    if action == AT_OPENING:
        # Still closed: it waits for the opening. Open meanwhile: it goes now, as meant.
        at = _next_opening(client, feed)
    if action == SCHEDULE or at is not None:
        return _schedule(client, feed, form, send_key, saved, at=at, reply_to_id=reply_to_id)
    if (form.send_at.data or "").strip() and policy.can_schedule(current_user, client, feed):
        # A time was chosen, then Send pressed (or Enter, without JavaScript): not now.
        form.send_at.errors = [TIME_CHOSEN]
        return _refused(client, feed, form)
    try:
        files = _prepared_files(form, saved)
    except UploadError as error:
        form.files.errors = [str(error)]
        return _refused(client, feed, form)
    if policy.needs_approval(current_user):
        return _hold(client, feed, form, files, send_key, reply_to_id)
    # Read once: who is told of the message, and the composer's line naming who sees it.
    audience = outbox.audience(current_user, client, feed)
    try:
        message = messages.post_message(current_user, client, feed, form.text.data, files,
                                        send_key=send_key, audience=audience,
                                        reply_to_id=reply_to_id)
    except messages.AlreadySent as repeat:
        return _already_sent(client, feed, repeat.message, form)
    # The poll brings the automatic reply, if one goes, as any new message.
    away.reply_if_closed(message, current_user, client)
    if not wants_fragment():
        return redirect(feed_url(client.id, feed, message.id))
    answer = render_template(
        "messages/_created.html",
        item=posted_item(message, current_user, client, feed, with_files=bool(files),
                         told=audience.told),
        **composer_context(client, feed, token=form.composer.data, roster=audience.staff),
    )
    if reply_to_id:
        # The page's address loses its ?reply_to=: a reload answers nothing again.
        answer = htmx_response(answer, replace_url=url_for(
            "feeds.show", client_id=client.id, feed_name=feed.value))
    return answer


@bp.app_template_global()
def replied_report(value, client, feed) -> int | None:
    """The visit report a composer's `reply_to` names, when it is one of this feed's, still
    there: its message id; None for anything else (the message is then simply posted)."""
    try:
        message_id = as_id(value or "")
    except ValueError:
        return None
    return db.session.scalar(select(Message.id).where(
        Message.id == message_id, Message.client_id == client.id, Message.feed == feed,
        Message.via == VIA_REPORT, Message.deleted_at.is_(None)))


def _prepared_files(form, saved):
    """The files chosen and the saved reply's, checked and converted; raises UploadError."""
    files = messages.prepare_uploads(
        form.uploads(), messages.UploadLimits.from_config(current_app.config)
    )
    if saved is not None:
        files += saved_replies.files_to_send(saved)
        if len(files) > current_app.config["UPLOAD_MAX_FILES"]:
            raise UploadError(f"Attach at most {current_app.config['UPLOAD_MAX_FILES']} "
                              "files to one message, the saved reply's included.")
    return files


def _hold(client, feed, form, files, send_key, reply_to_id=None):
    """A staff member whose messages need approval: it waits, listed under the feed for them
    and the admin team as awaiting approval, and nobody else is told of it yet."""
    earlier = send_later.scheduled_with(current_user, send_key)
    if earlier and earlier.text != form.text.data:
        form.text.errors = [NOT_HELD_YET]
        return _refused(client, feed, form, status=409)
    if earlier is None:
        send_later.hold(current_user, client, feed, form.text.data, files, send_key=send_key,
                        reply_to_id=reply_to_id)
    said = f"Sent for approval: {client.name} will see it once it is approved."
    return _scheduled_changed(client, feed, said, token=form.composer.data)


def _next_opening(client, feed):
    """When the business next opens, while it is closed (Send at opening)."""
    policy.require(policy.can_schedule(current_user, client, feed))
    hours = Hours.of(current_user.business)
    now = utcnow()
    return None if hours.is_open(now) else hours.next_opening(now)


def _saved_reply_chosen(form, client, feed):
    """The saved reply whose files go with the message (its box ticked in the composer): only
    one of the business's, and only on its side (anything else sent here is ignored)."""
    if not policy.can_use_saved_replies(current_user, client, feed):
        return None
    return saved_reply_choice(form.saved_reply.data)


@bp.app_template_global()
def saved_reply_choice(value) -> SavedReply | None:
    """The saved reply a composer's `saved_reply` names, when it is one of the person's
    business (the composer then offers to send its files); None for anything else."""
    try:
        reply_id = as_id(value or "")
    except ValueError:
        return None
    return db.session.scalar(select(SavedReply).where(
        SavedReply.id == reply_id, SavedReply.business_id == current_user.business_id))


def _schedule(client, feed, form, send_key, saved, at=None, reply_to_id=None):
    """Send later: the message and its files wait, listed under the feed for its author and
    the admin team, until its time (services.send_later): the time chosen, or `at`."""
    policy.require(policy.can_schedule(current_user, client, feed))
    try:
        send_at = (send_later.checked_time(at, current_user.business.time_zone) if at else
                   send_later.send_time(form.send_at.data, current_user.business.time_zone))
    except send_later.ScheduleRefused as error:
        form.send_at.errors = [str(error)]
        return _refused(client, feed, form)
    earlier = send_later.scheduled_with(current_user, send_key)
    if earlier and (earlier.text, earlier.due_at) != (form.text.data, send_at):
        # The key came back with a page the browser restored, and something was changed.
        form.text.errors = [NOT_SCHEDULED_YET]
        return _refused(client, feed, form, status=409)
    if earlier is None:
        try:
            files = _prepared_files(form, saved)
        except UploadError as error:
            form.files.errors = [str(error)]
            return _refused(client, feed, form)
    scheduled = earlier or send_later.schedule(current_user, client, feed, form.text.data,
                                               send_at, send_key=send_key, files=files,
                                               reply_to_id=reply_to_id)
    said = f"Scheduled for {business_day_and_time(scheduled.due_at)}."
    if scheduled.held:
        said += " It goes then once approved (at once, if approved after that)."
    return _scheduled_changed(client, feed, said, token=form.composer.data)


def _scheduled_changed(client, feed, said: str, token: str | None = None, *, composer=True,
                       category="success"):
    """After a scheduled message changed: htmx gets the feed's list and what happened (and,
    after Schedule, a fresh composer), a plain form the feed page at that list."""
    if not wants_fragment():
        flash(said, category)
        return redirect(scheduled_url(client.id, feed))
    context = {"client": client, "feed": feed, "said": said,
               "scheduled": send_later.waiting(current_user, client, feed)}
    if composer:
        context |= composer_context(client, feed, token=token)
    return render_template("messages/_scheduled.html", composer=composer, **context)


def scheduled_url(client_id: int, feed) -> str:
    return url_for("feeds.show", client_id=client_id, feed_name=feed.value) + \
        f"#scheduled-{feed.value}"


def _scheduled(scheduled_id: int):
    """A scheduled message the person may change (its author, the admin team), or 404."""
    scheduled = scheduled_of_business(current_user, scheduled_id)
    client = client_of_business(current_user, scheduled.client_id)
    policy.require(policy.can_manage_scheduled(current_user, client, scheduled))
    return scheduled, client


@bp.route("/scheduled/<int:scheduled_id>/edit", methods=["GET", "POST"])
@login_required
def edit_scheduled(scheduled_id: int):
    """A scheduled or held message's text (and time, while its time is still to come); the
    admin team may approve a held one with their changes."""
    scheduled, client = _scheduled(scheduled_id)
    if scheduled.status != DeliveryStatus.PENDING and request.method == "GET":
        flash(ALREADY_GONE, "error")
        return redirect(scheduled_url(client.id, scheduled.feed))
    time_zone = current_user.business.time_zone
    timed = scheduled.goes_later  # held as written, it has no time to change
    form = ScheduledMessageForm(data={
        "text": scheduled.text, "send_at": send_later.input_value(scheduled.due_at, time_zone),
    })
    form.has_files = bool(scheduled.files)
    reviewing = scheduled.held and policy.can_review_held(current_user, client, scheduled)
    if form.validate_on_submit():
        approving = reviewing and request.form.get("action") == APPROVE
        seen = _seen_revision()
        try:
            send_at = (send_later.send_time(form.send_at.data, time_zone) if timed
                       else scheduled.due_at)
            if approving:
                return _approved(client, scheduled, form.text.data, send_at, seen)
            send_later.edit(current_user, scheduled, form.text.data, send_at, seen)
        except send_later.ScheduleRefused as error:
            form.send_at.errors = [str(error)]
        except send_later.Changed:
            # Its text as it is now (the revision too): what the next press approves.
            form.text.data = scheduled.text
            form.text.errors = [f"{CHANGED_SINCE} It is shown as it is now; your changes "
                                "were not saved."]
        except send_later.AlreadyGone:
            # The changes stay on the page: they may be worth sending as a new message.
            form.text.errors = [f"{ALREADY_GONE} Your changes were not saved."]
        else:
            flash(_waits_until(scheduled), "success")
            return redirect(scheduled_url(client.id, scheduled.feed))
    status = 422 if form.errors else 200
    return render_template("messages/edit_scheduled.html", form=form, scheduled=scheduled,
                           client=client, timed=timed, reviewing=reviewing), status


def _waits_until(scheduled) -> str:
    if scheduled.held and not scheduled.goes_later:
        return "Saved. It awaits approval."
    said = f"Scheduled for {business_day_and_time(scheduled.due_at)}."
    return f"{said} It awaits approval." if scheduled.held else said


@bp.route("/scheduled/<int:scheduled_id>/send-now", methods=["POST"])
@login_required
def send_scheduled_now(scheduled_id: int):
    scheduled, client = _scheduled(scheduled_id)
    policy.require(policy.can_send_scheduled_now(current_user, client, scheduled))
    try:
        message = send_later.send_now(current_user, scheduled)
    except send_later.AlreadyGone:
        message, said = None, ALREADY_GONE
    except send_later.AwaitsApproval:
        message, said = None, NOW_AWAITS_APPROVAL
    else:
        said = "Sent." if message else f"Not sent: {scheduled.last_error}."
    return _posted_or_not(client, scheduled, message, said)


def _posted_or_not(client, scheduled, message, said):
    response = _scheduled_changed(client, scheduled.feed, said, composer=False,
                                  category="success" if message else "error")
    # The open feed asks at once for what it does not show yet: the message just posted.
    return htmx_response(response, trigger="poll-now") if wants_fragment() else response


@bp.route("/scheduled/<int:scheduled_id>/cancel", methods=["POST"])
@login_required
def cancel_scheduled(scheduled_id: int):
    scheduled, client = _scheduled(scheduled_id)
    try:
        send_later.cancel(current_user, scheduled)
    except send_later.AlreadyGone:
        return _scheduled_changed(client, scheduled.feed, ALREADY_GONE, composer=False,
                                  category="error")
    if scheduled.held:
        said = "Withdrawn: it will not be sent."
    else:
        said = f"Not sent: the message for {business_day_and_time(scheduled.due_at)} will not go."
    return _scheduled_changed(client, scheduled.feed, said, composer=False)


# --- approval -----------------------------------------------------------------------------------

def _held(scheduled_id: int):
    """A message awaiting approval that the person may review (the admin team), or 404."""
    scheduled, client = _scheduled(scheduled_id)
    policy.require(policy.can_review_held(current_user, client, scheduled))
    return scheduled, client


@bp.route("/scheduled/<int:scheduled_id>/approve", methods=["POST"])
@login_required
def approve_held(scheduled_id: int):
    scheduled, client = _held(scheduled_id)
    try:
        return _approved(client, scheduled, seen=_seen_revision())
    except send_later.Changed:
        return _review_gone(client, scheduled, CHANGED_SINCE)
    except send_later.AlreadyGone:
        return _review_gone(client, scheduled)


def _seen_revision() -> int | None:
    """The revision of the message the reviewer's page showed (a form's `revision`)."""
    value = request.form.get("revision", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def _approved(client, scheduled, text=None, send_at=None, seen=None):
    """Approves it (raises AlreadyGone, Changed): posted now when its time has passed, else
    at it."""
    if send_at is not None and send_at != scheduled.due_at:
        send_later.edit(current_user, scheduled, scheduled.text, send_at, seen)
        seen = scheduled.revision
    message = send_later.approve(current_user, scheduled, text, seen)
    if message is None and scheduled.status == DeliveryStatus.PENDING:
        said = (f"Approved: it goes to {client.name} "
                f"{business_day_and_time(scheduled.due_at)}.")
        return _scheduled_changed(client, scheduled.feed, said, composer=False)
    said = (f"Approved and sent to {client.name}." if message else
            f"Approved, but not sent: {scheduled.last_error}.")
    return _posted_or_not(client, scheduled, message, said)


@bp.route("/scheduled/<int:scheduled_id>/reject", methods=["GET", "POST"])
@login_required
def reject_held(scheduled_id: int):
    """Reject, with a note for its author: a page of its own without JavaScript (or when the
    note is missing), else in place under the feed."""
    scheduled, client = _held(scheduled_id)
    if request.method == "GET" and not scheduled.held:
        flash(NO_LONGER_HELD, "error")
        return redirect(scheduled_url(client.id, scheduled.feed))
    form = RejectionForm()
    if form.validate_on_submit():
        try:
            send_later.reject(current_user, scheduled, form.note.data, _seen_revision())
        except send_later.Changed:
            return _review_gone(client, scheduled, CHANGED_SINCE)
        except send_later.AlreadyGone:
            return _review_gone(client, scheduled)
        said = f"Not approved: {scheduled.author.name} was sent your note."
        return _scheduled_changed(client, scheduled.feed, said, composer=False)
    if wants_fragment() and request.method == "POST":
        # The note was left empty: the list again, saying so where the note is written.
        return _scheduled_changed(client, scheduled.feed, form.note.errors[0], composer=False,
                                  category="error")
    status = 422 if form.errors else 200
    return render_template("messages/reject_held.html", form=form, scheduled=scheduled,
                           client=client), status


def _review_gone(client, scheduled, said=NO_LONGER_HELD):
    return _scheduled_changed(client, scheduled.feed, said, composer=False, category="error")


@bp.route("/scheduled/<int:scheduled_id>/dismiss", methods=["POST"])
@login_required
def dismiss_rejected(scheduled_id: int):
    """The author puts away the note on a message not approved."""
    scheduled = scheduled_of_business(current_user, scheduled_id)
    client = client_of_business(current_user, scheduled.client_id)
    policy.require(scheduled.author_id == current_user.id and scheduled.rejected
                   and policy.can_view_feed(current_user, client, scheduled.feed))
    send_later.dismiss(current_user, scheduled)
    return _scheduled_changed(client, scheduled.feed, "", composer=False)


@bp.route(f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>/saved-replies")
@login_required
def saved_replies_picker(client_id: int, feed_name: str):
    """The composer's saved replies: the picker alone for htmx, a page of it without."""
    client, feed = visible_feed(current_user, client_id, feed_name)
    policy.require(policy.can_use_saved_replies(current_user, client, feed))
    context = {"client": client, "feed": feed,
               "replies": saved_replies.of_business(current_user.business_id)}
    if wants_fragment():
        return render_template("feeds/_saved_replies.html", **context)
    return render_template("messages/saved_replies.html", **context)


@bp.route(f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>/saved-replies/"
          "<int:reply_id>")
@login_required
def saved_reply(client_id: int, feed_name: str, reply_id: int):
    """A saved reply filled in for this client: for portal.js to insert, or (without
    JavaScript) the feed page with it in the composer."""
    client, feed = visible_feed(current_user, client_id, feed_name)
    policy.require(policy.can_use_saved_replies(current_user, client, feed))
    reply = saved_reply_of_business(current_user, reply_id)
    text = saved_replies.filled(reply, client, current_user)
    if wants_fragment():
        answer = jsonify(id=reply.id, title=reply.title, text=text,
                         files=[file.original_name for file in reply.files])
        answer.headers["Cache-Control"] = "no-store"  # a client's name, pets and visits
        return answer
    form = MessageForm(formdata=None, data={"text": text, "saved_reply": str(reply.id)})
    return render_client_page(client, feed, form=form)


def _already_sent(client, feed, earlier, form):
    """A send repeated with its one-time key (a double tap, a retried request): it changes
    nothing and answers as the first one did, with that message. htmx gets a fresh composer,
    and the feed asks at once for what it does not show yet: the first answer may be lost."""
    shown = earlier.client_id == client.id and earlier.feed == feed and not earlier.is_deleted
    if shown and form.text.data != earlier.text:
        # Not a repeat of what went: the key came back with a page the browser restored, or
        # the text was changed after an answer that never arrived. Nothing is lost.
        form.text.errors = [NOT_SENT_YET]
        return _refused(client, feed, form, status=409)
    if not wants_fragment():
        return redirect(feed_url(client.id, feed, earlier.id if shown else None))
    context = composer_context(client, feed, token=form.composer.data)
    return htmx_response(render_template("messages/_already_sent.html", **context),
                         trigger="poll-now")


def _refused(client, feed, form, throttled: throttle.Refusal | None = None, status: int = 422):
    """The composer again, with the reason and the text kept. htmx gets it as a 200 fragment
    (htmx swaps no error answers); a plain form post gets the page with 422, or 429."""
    if wants_fragment():
        context = composer_context(client, feed, form, token=form.composer.data)
        # The composer replaces itself, whatever element sent the form.
        return htmx_response(render_template("feeds/_composer.html", **context),
                             retarget=f"#composer-{feed.value}", reswap="outerHTML")
    if throttled:
        headers = {"Retry-After": str(throttled.retry_after)}
        return render_client_page(client, feed, form=form), 429, headers
    return render_client_page(client, feed, form=form), status


def _deletable(message_id: int):
    message = message_of_business(current_user, message_id)
    client = client_of_business(current_user, message.client_id)
    policy.require(policy.can_view_feed(current_user, client, message.feed))
    return message, client


@bp.route("/messages/<int:message_id>")
@login_required
def show(message_id: int):
    message, client = _deletable(message_id)
    if not wants_fragment():
        return redirect(feed_url(client.id, message.feed, message.id))
    return render_template(
        "messages/_message.html", item=load_item(message.id, current_user, client, message.feed),
        client=client, feed=message.feed,
    )


@bp.route("/messages/<int:message_id>/delete", methods=["GET"])
@login_required
def confirm_delete(message_id: int):
    message, client = _deletable(message_id)
    policy.require(policy.can_delete_message(current_user, message, client))
    item = load_item(message.id, current_user, client, message.feed)
    return _confirm_delete_page(message, client, item)


def _confirm_delete_page(message, client, item):
    context = {"item": item, "client": client, "feed": message.feed,
               "consequence": deletion_consequence(message)}
    if wants_fragment():
        return render_template("messages/_confirm_delete.html", **context)
    return render_template("messages/confirm_delete.html", **context)


def deletion_consequence(message) -> str:
    """What deleting does, truthfully: notifications already delivered stay delivered. A client
    hears that the business was told, not how many of its people by which channel."""
    replaced = "It will be replaced by “Message deleted” for everyone."
    delivered = outbox.delivered(message)
    if delivered and not policy.sees_delivery_details(current_user):
        return f"{replaced} {current_user.business.name} has already been notified of it."
    if delivered:
        said = and_list(channel.count(count) for channel, count in sorted(delivered.items()))
        return f"{replaced} The {said} already delivered cannot be recalled."
    if messages.in_undo_window(message):
        return f"{replaced} Nobody has been notified yet, and nobody will be."
    return replaced


@bp.route("/messages/<int:message_id>/unsend", methods=["POST"])
@login_required
def unsend(message_id: int):
    """Takes back the author's own message within its undo window; its text goes back into
    the composer. Once anything has gone out, says so and offers Delete instead."""
    message, client = _deletable(message_id)  # 404 unless the person sees its feed
    if message.unsent and message.author_id == current_user.id:
        return redirect(feed_url(client.id, message.feed, message.id))  # sent again (reload)
    policy.require(policy.can_unsend_message(current_user, message, client))
    feed, text = message.feed, message.text
    try:
        files = messages.unsend_message(current_user, message)
    except messages.TooLateToUnsend:
        item = load_item(message.id, current_user, client, feed)
        item.notice, item.unsend_url = TOO_LATE_TO_UNSEND, None
        if wants_fragment():
            return render_template("messages/_message.html", item=item, client=client, feed=feed)
        return _confirm_delete_page(message, client, item), 409
    said = UNSENT + (FILES_GONE if files else "")
    item = load_item(message.id, current_user, client, feed)
    if wants_fragment():
        item.notice = said
        return render_template(
            "messages/_unsent.html", item=item, client=client, feed=feed, text=text or ""
        )
    flash(said, "success")
    return render_client_page(client, feed, form=MessageForm(formdata=None, data={"text": text}))


@bp.route("/messages/<int:message_id>/delete", methods=["POST"])
@login_required
def delete(message_id: int):
    message, client = _deletable(message_id)
    policy.require(policy.can_delete_message(current_user, message, client))
    messages.delete_message(current_user, message)
    if not wants_fragment():
        flash("The message was deleted.", "success")
        return redirect(feed_url(client.id, message.feed, message.id))
    return render_template(
        "messages/_message.html", item=load_item(message.id, current_user, client, message.feed),
        client=client, feed=message.feed,
    )


@bp.route("/messages/<int:message_id>/delivery")
@login_required
def delivery(message_id: int):
    """The message's delivery line alone: it asks again while something is on its way."""
    message, client = _deletable(message_id)
    policy.require(policy.sees_delivery(current_user, client, message.feed, message.author_id))
    if not wants_fragment():
        return redirect(feed_url(client.id, message.feed, message.id))
    if message.is_deleted:
        # Deleted or unsent meanwhile: no line, and 286 tells htmx to stop asking.
        return f'<div class="delivery" id="delivery-{message.id}"></div>', 286
    item = load_item(message.id, current_user, client, message.feed)
    return render_template("messages/_delivery.html", item=item)


@bp.route("/messages/<int:message_id>/delivery/retry", methods=["POST"])
@login_required
def retry_delivery(message_id: int):
    """Retry under a message: its failed notifications go back to the outbox now."""
    message, client = _deletable(message_id)
    policy.require(policy.can_retry_delivery(current_user, message, client))
    retried = outbox.retry_failed_of(message)
    if not wants_fragment():
        flash(f"Sending {retried} notification{'s' if retried != 1 else ''} again.", "success")
        return redirect(feed_url(client.id, message.feed, message.id))
    item = load_item(message.id, current_user, client, message.feed)
    return render_template("messages/_delivery.html", item=item)
