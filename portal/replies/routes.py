"""Settings > Unmatched replies: the admin team files a reply that could not be posted into the
client's feed it belongs in, or discards it. Every page and action works without JavaScript;
with htmx, an action swaps the reply's item in place."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import policy
from portal.extensions import db
from portal.fragments import render, wants_fragment
from portal.inbound import queue
from portal.loaders import client_of_business
from portal.models import Client, Feed, InboundMessage
from portal.replies import bp
from portal.urls import chosen_id, id_arg

REPLIES_PER_PAGE = 25
ALREADY_RESOLVED = "Someone else filed or discarded this reply meanwhile."


@bp.before_request
@login_required
def admin_team_only():
    policy.require(policy.can_review_unmatched_replies(current_user))


@bp.app_template_global()
def unmatched_replies_count() -> int:
    """For the settings menu: how many replies wait for the viewer."""
    return queue.pending_count(current_user)


@bp.route("")
def index():
    """The queue, newest first; More (or the next page without JavaScript) pages by id."""
    before = id_arg("before")
    page = queue.pending(current_user, before=before, limit=REPLIES_PER_PAGE)
    next_page = url_for("replies.index", before=page.next_before) if page.next_before else None
    return render(
        "replies/index.html", "replies/_more.html" if before else "replies/_replies.html",
        queue_page=page, next_page=next_page, paged=before is not None, **_choices(),
    )


@bp.route("/<int:reply_id>")
def show(reply_id: int):
    """One reply's item (Keep after Discard? with htmx); the queue without JavaScript."""
    reply = _waiting(reply_id)
    if not wants_fragment():
        return redirect(url_for("replies.index") + f"#reply-{reply.id}")
    return render_template("replies/_reply.html", reply=reply, **_choices())


@bp.route("/<int:reply_id>/file", methods=["POST"])
def file(reply_id: int):
    reply = _waiting(reply_id)
    client_id, feed = chosen_id(request.form.get("client_id")), _feed(request.form.get("feed"))
    if client_id is None or feed is None:
        return _refused(reply, "Choose a client and a feed to file the reply into.")
    if not policy.can_file_unmatched_reply_into(reply.feed, reply.unreadable, feed):
        return _refused(reply, "A reply to a private message (or one the portal could not "
                               "read) can be filed into a Private feed only.")
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_post(current_user, client, feed))
    try:
        message = queue.file_reply(current_user, reply, client, feed)
    except queue.AlreadyResolved:
        return _resolved(reply_id, ALREADY_RESOLVED)
    except queue.NothingToFile:
        return _refused(reply, "There is nothing in this reply to file: discard it instead.")
    feed_url = url_for("feeds.show", client_id=client.id, feed_name=feed.value)
    return _resolved(reply_id, f"Filed into {client.name}'s {feed.label} feed.",
                     f"{feed_url}#message-{message.id}")


@bp.route("/<int:reply_id>/discard", methods=["GET", "POST"])
def discard(reply_id: int):
    """GET asks "Discard this reply?" (in place with htmx, as a page without); POST does it."""
    reply = _waiting(reply_id)
    if request.method == "GET":
        template = "replies/_confirm_discard.html" if wants_fragment() else \
            "replies/confirm_discard.html"
        return render_template(template, reply=reply, **_choices())
    try:
        queue.discard(current_user, reply)
    except queue.AlreadyResolved:
        return _resolved(reply_id, ALREADY_RESOLVED)
    return _resolved(reply_id, "The reply was discarded.")


def _waiting(reply_id: int) -> InboundMessage:
    """A reply still waiting that the viewer may see; 404 for any other (one that was filed
    or discarded, another business's, a private one for someone without private access)."""
    reply = queue.pending_reply(current_user, reply_id)
    policy.require(reply is not None)
    return reply


def _feed(value: str | None) -> Feed | None:
    try:
        return Feed(value)
    except ValueError:
        return None


def _choices() -> dict:
    """The clients File into offers the viewer, and the feeds it offers for a reply."""
    clients = list(db.session.scalars(
        policy.clients_visible_to(current_user).order_by(Client.name, Client.id)
    ))
    return {"clients": clients, "clients_by_id": {client.id: client for client in clients},
            "feeds_for": _feeds_for}


def _feeds_for(reply: InboundMessage) -> list[Feed]:
    return policy.feeds_to_file_unmatched_reply_into(current_user, reply.feed, reply.unreadable)


def _refused(reply: InboundMessage, error: str):
    """The item again with what is wrong, in place (200, as htmx swaps); without JavaScript,
    the queue with the error said at the top."""
    if wants_fragment():
        return render_template("replies/_reply.html", reply=reply, error=error, **_choices())
    flash(error, "error")
    return redirect(url_for("replies.index") + f"#reply-{reply.id}")


def _resolved(reply_id: int, notice: str, link: str | None = None):
    if wants_fragment():
        return render_template("replies/_resolved.html", reply_id=reply_id, notice=notice,
                               link=link)
    flash(notice, "success")
    return redirect(url_for("replies.index"))

