from flask import g, render_template, request, url_for
from flask_login import current_user, login_required

from portal import policy, unread
from portal.center import bp, query
from portal.fragments import wants_fragment
from portal.loaders import client_of_business
from portal.services import send_later
from portal.urls import id_arg

THREADS_PER_PAGE = 25
# Held messages listed at once: approving them takes them off, so there is no paging.
HELD_SHOWN = 200


@bp.route("/messages")
@login_required
def index():
    """The Message Center: the page, the results alone (filters and search), or the next
    threads alone (More), from one URL."""
    policy.require(policy.can_use_message_center(current_user))
    filters = query.Filters.from_args(request.args, policy.feeds_in_lists(current_user),
                                      approvals=policy.sees_held_messages(current_user))
    whole_page = not wants_fragment()
    if filters.show == query.Show.APPROVAL:
        return _awaiting_approval(filters, whole_page)
    before = id_arg("before")
    listing = query.load(current_user, filters, before=before, limit=THREADS_PER_PAGE,
                         with_total=whole_page)
    if listing.unread_total is not None:
        g.unread_total = listing.unread_total  # the navigation badge, already counted
    if listing.held_total is not None:
        g.held_total = listing.held_total
    next_page = None
    if listing.next_before is not None:
        next_page = url_for(
            "center.index", show=filters.show if filters.show != query.Show.ALL else None,
            q=filters.search or None, before=listing.next_before,
        )
    return render_template(
        "center/index.html" if whole_page else
        "center/_more.html" if before else "center/_results.html",
        listing=listing, filters=filters, next_page=next_page, paged=before is not None,
    )


def _awaiting_approval(filters, whole_page: bool):
    """The admin team's "Awaiting approval": the staff messages held for it, the longest
    waiting first, each with its client's feed (where it is approved or rejected)."""
    held = send_later.held_for(current_user, limit=HELD_SHOWN, search=filters.search)
    template = "center/index.html" if whole_page else "center/_results.html"
    return render_template(template, filters=filters, held=held, held_shown=HELD_SHOWN,
                           excerpt=query.excerpt, listing=None, next_page=None, paged=False)


@bp.route("/messages/badge")
@login_required
def badge():
    """The navigation's unread total, for its own poll; on a client's page also the badges of
    the feed tabs other than the open one, out of band (one counting query either way)."""
    client_id = id_arg("client_id")
    if client_id is None:
        return render_template("_nav_unread.html")
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_view_client(current_user, client))
    feeds = policy.visible_feeds(current_user, client)
    open_feed = next((feed for feed in feeds if feed.value == request.args.get("feed")), None)
    counts = unread.open_feed(current_user, client, open_feed, feeds, None)
    g.unread_total = counts.total
    return render_template(
        "center/_badges.html", client=client, feed=open_feed,
        tabs={feed: 0 if feed == open_feed else counts.unread[feed] for feed in feeds},
    )
