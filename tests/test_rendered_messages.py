"""Rendered messages kept (portal/feed_component/rendered.py): a kept article is byte for byte
what rendering gives, for every viewer, and never another viewer's; what changes a message
changes what is shown at once."""

import re
import uuid
from datetime import timedelta

import pytest
from flask_login import login_user
from sqlalchemy import update

from portal.extensions import db
from portal.feed_component import query, rendered
from portal.models import Client, Feed, Message, Role, User, utcnow
from portal.services import messages

from .helpers import grant_private_access, png_bytes, set_private_messaging, update_row
from .test_throttle import redis_reachable

VIEWERS = ["admin", "office_manager", "office_manager_private", "assigned_staff",
           "household_login"]
PHOTO = png_bytes()


def feed_url(client, feed="conversation"):
    return f"/clients/{client.id}/feeds/{feed}"


def articles(page: str) -> dict[str, str]:
    """The page's articles by their DOM id."""
    found = re.findall(r'(<article [^>]*id="(message-\d+)".*?</article>)', page, re.S)
    return {dom_id: article for article, dom_id in found}


@pytest.fixture
def cast(request):
    return {name: request.getfixturevalue(name) for name in VIEWERS}


@pytest.fixture
def feed_of_every_kind(app, cast, household, make_message):
    """Own and others' messages of every role, a deleted one, an unsent one, photos and files,
    a reply by email; aged past the undo window (an Unsend form is never kept)."""
    admin, client = cast["admin"], cast["household_login"]
    made = [
        make_message(household, admin, "Walk done, see https://example.com/a?b=1 <b>",
                     files=[("walk.png", PHOTO), ("invoice.pdf", b"%PDF-1.4 zq")]),
        make_message(household, client, "Thanks! Is Rex ok?"),
        make_message(household, cast["assigned_staff"], "Rex was great"),
        make_message(household, cast["office_manager"], "Invoice attached",
                     files=[("notes.txt", b"notes")]),
        make_message(household, client, "sent to the wrong client"),
        make_message(household, admin, "taken back", files=[("oops.png", PHOTO)]),
        make_message(household, client, "Replying from my phone"),
    ]
    with app.app_context():
        messages.delete_message(db.session.get(User, admin.id),
                                db.session.get(Message, made[4].id))
        messages.unsend_message(db.session.get(User, admin.id),
                                db.session.get(Message, made[5].id))
        db.session.execute(update(Message).where(Message.id == made[6].id).values(via="email"))
        db.session.execute(update(Message).values(created_at=utcnow() - timedelta(hours=3)))
        db.session.commit()
    return made


def render_three_ways(app, viewer, client, feed=Feed.CONVERSATION) -> tuple[str, str, str]:
    """The viewer's page of messages rendered straight by the template; through the cache as a
    page does (whatever it kept before; keyed by its rows, before any item is built); and so
    again (all kept now). Each from a page of its own."""
    with app.test_request_context():
        user = db.session.get(User, viewer.id)
        login_user(user)

        def page():
            return query.load_page(db.session.get(Client, client.id), feed, user).items

        first, second = str(rendered.render_messages(page())), str(
            rendered.render_messages(page()))
        return "".join(rendered._render(list(page()), False)), first, second


def kept(app) -> int:
    store = app.extensions.get("rendered_messages")
    return len(store.entries) if store else 0


def test_kept_articles_are_what_rendering_gives_for_every_role(
    app, cast, household, feed_of_every_kind
):
    rendered.clear(app)
    pages, shown = set(), set()
    for name in VIEWERS:  # the admin first: what it kept must not reach the others
        uncached, first, second = render_three_ways(app, cast[name], household)
        assert first == uncached and second == uncached, name
        assert uncached.count("<article") == len(feed_of_every_kind)
        pages.add(uncached)
        shown.update(articles(uncached).values())
    assert len(pages) == len(VIEWERS)  # each viewer is shown something of their own
    # Viewers shown the same article share it; every different article is kept apart.
    assert len(shown) <= kept(app) < len(feed_of_every_kind) * len(VIEWERS)


# Ages of messages, and moments later the page is seen again: across "just now", the minutes,
# today, yesterday, the week, and the year (the viewer's zone: America/Chicago).
AGES = [timedelta(seconds=20), timedelta(minutes=3), timedelta(minutes=58), timedelta(hours=2),
        timedelta(hours=23), timedelta(days=3), timedelta(days=40), timedelta(days=300)]
LATER = [timedelta(0), timedelta(seconds=45), timedelta(minutes=1), timedelta(minutes=5),
         timedelta(hours=1), timedelta(hours=7), timedelta(days=1), timedelta(days=6),
         timedelta(days=70)]


def test_kept_articles_follow_the_clock(app, cast, household, make_message, monkeypatch):
    # A page's articles are kept by their rows and the viewer's clock (query.Presenter's
    # article_key): as time passes, a kept article is used only while its words still hold.
    made = [make_message(household, cast["household_login"], f"aged {n}")
            for n in range(len(AGES))]
    start = utcnow()
    for message, age in zip(made, AGES, strict=True):
        update_row(app, Message, message.id, created_at=start - age)
    rendered.clear(app)
    seen = set()
    for later in LATER:
        monkeypatch.setattr(query, "utcnow", lambda later=later: start + later)
        uncached, first, second = render_three_ways(app, cast["admin"], household)
        assert first == uncached and second == uncached, later
        seen.add(uncached)
    assert len(seen) > len(LATER) // 2  # the words did move on


def test_a_page_item_given_a_notice_is_not_kept(app, cast, household, make_message):
    make_message(household, cast["household_login"], "noticed zq-77")
    rendered.clear(app)
    with app.test_request_context():
        user = db.session.get(User, cast["admin"].id)
        login_user(user)
        page = query.load_page(db.session.get(Client, household.id), Feed.CONVERSATION, user)
        page.items[-1].notice = "Sent again"
        assert "Sent again" in str(rendered.render_messages(page.items))
    assert kept(app) == 0


def test_rights_of_a_viewer_never_reach_another(
    logged_in, cast, household, feed_of_every_kind
):
    admin_page = logged_in(cast["admin"]).get(feed_url(household)).get_data(as_text=True)
    assert "Message deleted by Alice Admin" in admin_page
    assert admin_page.count(">Delete<") == 5  # all but the tombstones
    for name in ("assigned_staff", "household_login"):
        page = logged_in(cast[name]).get(feed_url(household)).get_data(as_text=True)
        assert "Message deleted" in page and "deleted by" not in page, name
        assert "Alice Admin ·" not in page
        assert "Walk done" in page and "Message unsent" in page
        own = [article for article in articles(page).values() if "message own" in article]
        deletable = [article for article in articles(page).values() if ">Delete<" in article]
        assert deletable == [a for a in own if "tombstone" not in a], name


def test_deleting_changes_the_kept_article_at_once(
    app, logged_in, cast, household, make_message
):
    message = make_message(household, cast["household_login"], "gate code 4321",
                           files=[("gate.png", PHOTO), ("gate.txt", b"4321")])
    update_row(app, Message, message.id, created_at=utcnow() - timedelta(hours=1))
    admin, staff = logged_in(cast["admin"]), logged_in(cast["assigned_staff"])
    before = admin.get(feed_url(household)).get_data(as_text=True)
    assert "gate code 4321" in before and "gate.png" in before and "gate.txt" in before
    assert "gate code 4321" in staff.get(feed_url(household)).get_data(as_text=True)
    client = logged_in(cast["household_login"])
    assert client.htmx("POST", f"/messages/{message.id}/delete").status_code == 200
    after = admin.get(feed_url(household)).get_data(as_text=True)
    assert "Message deleted by Carla Client" in after
    assert "4321" not in after and "gate.png" not in after and "gate.txt" not in after
    staff_page = staff.get(feed_url(household)).get_data(as_text=True)
    assert "Message deleted" in staff_page and "4321" not in staff_page
    assert "Carla Client ·" not in staff_page
    # Its files are gone with it: the links the kept article had lead nowhere.
    token = re.search(r'/files/([\w-]+)', before).group(1)
    assert admin.get(f"/files/{token}").status_code == 404


def test_unsending_changes_the_kept_article_at_once(
    app, logged_in, cast, household, make_message
):
    author = cast["assigned_staff"]
    message = make_message(household, author, "to the wrong household",
                           files=[("wrong.png", PHOTO)])
    admin = logged_in(cast["admin"])
    assert "wrong.png" in admin.get(feed_url(household)).get_data(as_text=True)
    browser = logged_in(author)
    assert browser.htmx("POST", f"/messages/{message.id}/unsend").status_code == 200
    page = admin.get(feed_url(household)).get_data(as_text=True)
    assert "Message unsent" in page
    assert "to the wrong household" not in page and "wrong.png" not in page


@pytest.mark.parametrize(("old", "new"), [(Role.STAFF, Role.ADMIN), (Role.ADMIN, Role.STAFF)])
def test_a_changed_role_is_shown_at_once(
    app, logged_in, make_user, make_service, cast, household, feed_of_every_kind, old, new
):
    person = make_user(old, name="Robin Rolechange")
    make_service(household, person)  # as staff, they still see the household
    browser = logged_in(person)
    before = browser.get(feed_url(household)).get_data(as_text=True)
    update_row(app, User, person.id, role=new)
    after = browser.get(feed_url(household))
    if after.status_code != 200:  # a changed role may end the session: log in again
        browser = logged_in(person)
        after = browser.get(feed_url(household))
    after = after.get_data(as_text=True)
    admin_sees = ("deleted by Alice Admin", ">Delete<")
    for text in admin_sees:
        assert (text in before) == (old == Role.ADMIN)
        assert (text in after) == (new == Role.ADMIN)
    assert articles(after) and set(articles(after)) == set(articles(before))
    uncached, first, _ = render_three_ways(app, person, household)
    assert first == uncached


def test_revoked_private_access_is_refused_and_nothing_kept_leaks(
    app, logged_in, business, office_manager, household, make_message, cast
):
    set_private_messaging(app, business, True)
    grant_private_access(app, office_manager)
    secret = make_message(household, cast["admin"], "private zq-5521",
                          feed=Feed.PRIVATE, files=[("zq-5521.png", PHOTO)])
    browser = logged_in(office_manager)
    private = feed_url(household, "private")
    assert "private zq-5521" in browser.get(private).get_data(as_text=True)
    assert "private zq-5521" in browser.htmx("GET", private).get_data(as_text=True)
    grant_private_access(app, office_manager, False)
    partials = [private, f"{private}/earlier?before={secret.id + 1}", f"{private}/updates?after=0"]
    for url in partials:
        assert browser.get(url).status_code == 404, url
        assert browser.htmx("GET", url).status_code == 404, url
    page = browser.get(f"/clients/{household.id}").get_data(as_text=True)
    assert "zq-5521" not in page and 'id="tab-private"' not in page


def test_a_page_kept_adds_no_query(app, logged_in, cast, household, feed_of_every_kind):
    from .helpers import count_queries

    browser = logged_in(cast["admin"])
    browser.get(feed_url(household))  # marks the feed read: not to be counted
    rendered.clear(app)
    cold = count_queries(app, browser, feed_url(household))
    warm = count_queries(app, browser, feed_url(household))
    assert warm == cold


def test_the_lru_keeps_at_most_its_size():
    store = rendered.LocalStore(2)
    store.set_many([(("a",), "A"), (("b",), "B")])
    assert store.get_many([("a",)]) == ["A"]  # now the most recent
    store.set_many([(("c",), "C")])
    assert store.get_many([("a",), ("b",), ("c",), None]) == ["A", None, "C", None]


@pytest.fixture
def redis_prefix():
    prefix = f"portal-test-{uuid.uuid4().hex}"
    yield prefix
    import redis

    connection = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(connection.scan_iter(f"{prefix}:*"))
    if keys:
        connection.delete(*keys)


@pytest.mark.committed
@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")
def test_redis_shares_articles_between_workers(
    make_app, make_user, make_client, make_message, redis_prefix
):
    # Two apps stand for two workers of one deployment.
    settings = {"REDIS_URL": "redis://127.0.0.1:6379/0",
                "RENDERED_MESSAGES_REDIS_PREFIX": redis_prefix}
    first, second = make_app(**settings), make_app(**settings)
    admin = make_user(Role.ADMIN, name="Alice Admin")
    household = make_client()
    message = make_message(household, admin, "shared zq-3141", files=[("zq.png", PHOTO)])
    update_row(first, Message, message.id, created_at=utcnow() - timedelta(hours=1))
    uncached, from_first, _ = render_three_ways(first, admin, household)
    assert from_first == uncached and "shared zq-3141" in uncached
    import redis

    connection = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    assert len(list(connection.scan_iter(f"{redis_prefix}:*"))) == 1
    # The second worker finds it in Redis, in one round trip, and renders nothing.
    with second.test_request_context():
        store = rendered._store()
    calls = count_round_trips(store)
    with second.test_request_context():
        user = db.session.get(User, admin.id)
        login_user(user)
        page = query.load_page(db.session.get(Client, household.id), Feed.CONVERSATION, user)
        rendering = rendered._render
        try:
            rendered._render = lambda items, oob: pytest.fail("rendered again")
            from_second = str(rendered.render_messages(page.items))
        finally:
            rendered._render = rendering
    assert from_second == uncached and calls == ["mget"]
    # Deleted in one worker, shown so in the other at once: the key changed.
    with first.app_context():
        messages.delete_message(db.session.get(User, admin.id),
                                db.session.get(Message, message.id))
    uncached, from_second, _ = render_three_ways(second, admin, household)
    assert from_second == uncached and "Message deleted" in uncached and "zq" not in uncached


def count_round_trips(store) -> list[str]:
    calls = []
    mget, pipeline = store.redis.mget, store.redis.pipeline

    def counted_mget(*args, **kwargs):
        calls.append("mget")
        return mget(*args, **kwargs)

    def counted_pipeline(*args, **kwargs):
        calls.append("pipeline")
        return pipeline(*args, **kwargs)

    store.redis.mget, store.redis.pipeline = counted_mget, counted_pipeline
    return calls


@pytest.mark.committed
def test_redis_outage_renders_the_page(make_app, make_user, make_client, make_message):
    # Nothing listens on port 1: the page is rendered as without Redis.
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    admin = make_user(Role.ADMIN, name="Alice Admin")
    household = make_client()
    message = make_message(household, admin, "still shown zq-2718")
    update_row(app, Message, message.id, created_at=utcnow() - timedelta(hours=1))
    for _ in range(2):
        uncached, first, second = render_three_ways(app, admin, household)
        assert first == uncached == second and "zq-2718" in uncached
    browser = app.test_client()
    browser.login(admin)
    assert "zq-2718" in browser.get(feed_url(household)).get_data(as_text=True)
