from datetime import timedelta

from flask import abort, current_app, render_template, request
from flask_login import current_user, login_required

from portal import policy
from portal.extensions import csrf
from portal.feed_component.query import load_page, load_updates
from portal.feed_component.views import page_options, render_client_page
from portal.feeds import bp, pulse
from portal.forms import MessageForm
from portal.fragments import wants_fragment
from portal.loaders import visible_feed
from portal.models import Feed, utcnow
from portal.services import composers, feed_activity, send_later
from portal.urls import FEED_NAMES, id_arg, moment_from_token, moment_token, number_arg


@bp.route(f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>")
@login_required
def show(client_id: int, feed_name: str):
    client, feed = visible_feed(current_user, client_id, feed_name, *page_options())
    if reply_to := request.args.get("reply_to"):
        # A visit report's Reply: the composer answers it (the send checks it again).
        return render_client_page(client, feed, form=MessageForm(
            formdata=None, data={"reply_to": reply_to[:20]}))
    return render_client_page(client, feed)


@bp.route(
    f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>/left/<token>", methods=["POST"]
)
@csrf.exempt
@login_required
def leave(client_id: int, feed_name: str, token: str):
    """A feed tab followed without JavaScript: the browser pings this (<a ping>) as it starts
    loading the other feed, and this page's composer is retired (see RetiredComposer).

    Pings cannot carry a CSRF token. Nothing is exposed by going without: the write only
    records that the logged-in person left a page whose unguessable token they were shown.
    """
    visible_feed(current_user, client_id, feed_name)
    cross_site = request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin"
    if cross_site or not composers.is_token(token):
        abort(404)
    composers.retire(current_user, token)
    return "", 204


# A deletion's moment is taken before its transaction commits, on the clock of the host that
# served it: a poll that read just before the commit, or on a host whose clock runs a little
# ahead, has answered past it already, and the page would show the message until reloaded.
# Every poll looks this far back again, well beyond a take-down's few milliseconds to commit
# and hosts' clock drift; the page skips a tombstone it already shows (static/portal.js). Not
# further: until then the feed's polls take the slow path, and 50 tombstones would hold back
# new messages (load_updates' limit).
DELETIONS_LOOKED_BACK = timedelta(seconds=15)


@bp.route(f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>/updates")
def updates(client_id: int, feed_name: str):
    """The open feed's poll: 204 when nothing changed, else new messages and tombstones.

    `shown` comes with the poll after one that brought messages: the newest of them, which
    the page now shows (`after` says so). Only then do they count as read: the answer that
    brought them may never have been shown (another tab opened meanwhile), and who has read a
    message is not emailed or texted about it."""
    checked_at = utcnow()  # before the query: a deletion racing it is seen next time
    since = moment_from_token(number_arg("since")) - DELETIONS_LOOKED_BACK
    after = id_arg("after", 0)
    oldest = id_arg("oldest", after)
    shown = id_arg("shown")
    if shown is None and pulse.nothing_new(
        client_id, Feed(feed_name), after=after, oldest=oldest, since=since
    ):
        return "", 204
    return _changes(client_id, feed_name, checked_at, since, after, oldest,
                    shown if shown is not None and 0 < shown <= after else None)


@login_required
def _changes(client_id, feed_name, checked_at, since, after, oldest, shown):
    client, feed = visible_feed(current_user, client_id, feed_name)
    changes = load_updates(client, feed, current_user, after=after, oldest=oldest, since=since)
    if not changes and shown is None:
        return "", 204
    html = render_template(
        "feeds/_updates.html", client=client, feed=feed, changes=changes,
        since=moment_token(checked_at), shown=changes.added[-1].id if changes.added else None,
    )
    if changes.added and policy.can_schedule(current_user, client, feed):
        # A scheduled message among the new ones leaves the list under the feed.
        html += render_template("feeds/_scheduled.html", client=client, feed=feed, oob=True,
                                scheduled=send_later.waiting(current_user, client, feed))
    if shown is not None:
        # On screen means read; the navigation badge follows, out of band.
        feed_activity.mark_read(current_user, client, feed, shown)
        html += render_template("_nav_unread.html", oob=True)
    return html


@bp.route(f"/clients/<int:client_id>/feeds/<{FEED_NAMES}:feed_name>/earlier")
@login_required
def earlier(client_id: int, feed_name: str):
    """The page of messages before `before`: alone for "Load earlier messages", or in the page."""
    client, feed = visible_feed(current_user, client_id, feed_name, *page_options())
    before = id_arg("before")
    if not wants_fragment():
        return render_client_page(client, feed, before=before)
    page = load_page(
        client, feed, current_user, before=before,
        limit=current_app.config["FEED_PAGE_SIZE"],
    )
    return render_template("feeds/_earlier.html", client=client, feed=feed, page=page)
