"""The access matrix: every endpoint of the app is classified here, and every guarded one is called
by every role, with and without htmx, and must answer exactly the expected status.

A new endpoint fails test_classify_every_endpoint until it is added to PUBLIC, LOGGED_IN or
GUARDED below, and a guarded one fails test_cover_every_guarded_endpoint until it has cases in
FEED_CASES or MANAGEMENT_CASES. Every POST snapshots the whole database before and after: a
refused one must change nothing at all, an allowed one exactly the tables it names.

The expected answers are written from the issue's rules, not derived from portal/policy.py.
Each test logs one role in once and loops over the variants (feed, setting, htmx) inside,
reporting every mismatch at once; that keeps the module fast.
"""

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import select

from portal import policy
from portal.clock import zone
from portal.extensions import db
from portal.inbound import queue
from portal.models import (
    Attachment,
    AttachmentKind,
    Business,
    Client,
    DeliveryStatus,
    Feed,
    InboundChannel,
    Message,
    Notification,
    Role,
    SavedReply,
    ScheduledMessage,
    ScheduledMessageFile,
    ScheduledService,
    User,
    utcnow,
)
from portal.reply_addresses import ReplyToken
from portal.services import clients as clients_service
from portal.services import imports, visit_reports
from portal.services.uploads import Upload, prepare
from portal.storage import storage

from .cast import ADMIN_TEAM, ANONYMOUS, ROLES
from .helpers import (
    every_row,
    grant_private_access,
    png_bytes,
    set_private_messaging,
    update_row,
)

PHOTO = png_bytes()
CHICAGO = zone("America/Chicago")  # the businesses' zone

# --- classification of every endpoint -------------------------------------------------------------

# Anyone, logged in or not: endpoint -> url_for values of a URL that answers 200.
PUBLIC = {
    "static": {"filename": "portal.css"},
    "auth.login": {},
    "push.service_worker": {},
    # The installable app: named after the business of whoever asks (tests/test_install.py).
    "install.manifest": {},
    "install.icon": {"name": "icon-192"},
    "install.favicon": {},
    "auth.forgot_password": {},
    # A link that does not work answers with a page saying so (tests/test_accounts.py).
    "auth.reset_password": {"token": "not-a-token"},
    "auth.accept_invitation": {"token": "not-a-token"},
}
# Any logged-in user, whatever the role: endpoint -> methods.
LOGGED_IN = {
    "auth.home": {"GET"},
    "preferences.mine": {"GET", "POST"},
    "center.badge": {"GET"},
    "auth.logout": {"POST"},
    "auth.change_password": {"GET", "POST"},
    # This person's own devices: nothing of anyone else's is reachable (tests/test_push.py).
    "push.subscribe": {"POST"},
    "push.unsubscribe": {"POST"},
    # This person's own phone for texts: nothing of anyone else's is reachable
    # (tests/test_phone_confirmation.py).
    "preferences.phone_send": {"POST"},
    "preferences.phone_confirm": {"POST"},
    "preferences.phone_cancel": {"POST"},
    "preferences.phone_remove": {"POST"},
    # This person's own time zone (tests/test_schedule.py).
    "preferences.time_zone": {"POST"},
    # This person's own quiet hours (tests/test_quiet_hours.py).
    "preferences.quiet_hours": {"POST"},
}
# No login: a secret token in the path is the key, and an unknown one answers 404 to anyone
# (tests/test_calendar_feed.py): endpoint -> what the token is.
SECRET_URL = {
    "staff.calendar_feed": "a staff member's calendar token (User.calendar_token)",
}
# Anyone's, like PUBLIC, but found only once a business has set them (a 404 before): endpoint ->
# what, and where it is tested.
PUBLIC_ONCE_SET = {
    "install.logo": "a business's logo, shown on its login page (tests/test_install.py)",
    "install.business_icon": "the app icons drawn from that logo (tests/test_install.py)",
}
# Called by another service, which signs each request: endpoint -> who signs.
SIGNED = {
    "sms.status": "Twilio (X-Twilio-Signature, tests/test_delivery.py)",
    "sms.receive": "Twilio (X-Twilio-Signature, tests/test_sms_replies.py)",
}
# Guarded by a rule of portal/policy.py (the name is checked to exist), with cases below.
GUARDED = {
    "feeds.show": "can_view_feed",
    "feeds.earlier": "can_view_feed",
    "feeds.updates": "can_view_feed",
    "feeds.leave": "can_view_feed",
    "messages.create": "can_post",
    "messages.show": "can_view_feed",
    "messages.confirm_delete": "can_delete_message",
    "messages.delete": "can_delete_message",
    "messages.unsend": "can_unsend_message",
    "messages.delivery": "sees_delivery",
    "messages.retry_delivery": "can_retry_delivery",
    "messages.edit_scheduled": "can_manage_scheduled",
    "messages.send_scheduled_now": "can_send_scheduled_now",
    "messages.cancel_scheduled": "can_manage_scheduled",
    "messages.approve_held": "can_review_held",
    "messages.reject_held": "can_review_held",
    "messages.dismiss_rejected": "can_view_feed",
    "files.waiting_file": "can_manage_scheduled",
    "files.waiting_thumbnail": "can_manage_scheduled",
    "files.download": "can_view_feed",
    "files.thumbnail": "can_view_feed",
    "files.view": "can_view_feed",
    "clients.profile": "can_view_client",
    "clients.index": "can_manage_clients",
    "clients.new": "can_manage_clients",
    "clients.add_pet": "can_manage_clients",
    "clients.new_login": "can_manage_clients",
    "clients.schedule_service": "can_manage_clients",
    "clients.cancel_service": "can_manage_clients",
    "clients.edit_service": "can_manage_clients",
    "clients.reassign_service": "can_manage_clients",
    "clients.week_schedule": "can_view_week_schedule",
    "clients.add_preferred_sitter": "can_manage_clients",
    "clients.remove_preferred_sitter": "can_manage_clients",
    "clients.edit": "can_edit_client",
    "clients.archive": "can_archive_client",
    "clients.unarchive": "can_archive_client",
    "clients.edit_pet": "can_edit_client",
    "clients.archive_pet": "can_edit_client",
    "clients.restore_pet": "can_edit_client",
    "clients.pet_photo": "can_view_pet_photo",
    "clients.edit_household": "can_edit_household",
    "clients.edit_pet_care": "can_edit_household",
    "clients.import_records": "can_import_records",
    "clients.import_template": "can_import_records",
    # An upload waiting for its confirm: its uploader's alone (tests/test_import.py).
    "clients.import_preview": "can_import_records",
    "clients.import_confirm": "can_import_records",
    "clients.import_discard": "can_import_records",
    "staff.index": "can_manage_clients",
    "staff.new": "can_manage_clients",
    "accounts.resend_invitation": "can_manage_account",
    "accounts.deactivate": "can_manage_account",
    "accounts.reactivate": "can_manage_account",
    "accounts.try_emails_again": "can_manage_account",
    "accounts.message_approval": "can_set_message_approval",
    "visits.show": "can_work_visit",
    "visits.start": "can_work_visit",
    "visits.end": "can_work_visit",
    "visits.report": "can_work_visit",
    "visits.edit_note": "can_edit_report_note",
    "visits.past": "can_view_past_visits",
    "visits.thread": "can_view_report_thread",
    "settings.visit_report_settings": "can_manage_settings",
    "staff.my_clients": "is_staff",
    "staff.today": "can_view_today",
    "staff.calendar_link": "can_subscribe_to_calendar",
    "center.index": "can_use_message_center",
    "preferences.business_defaults": "can_manage_notifications",
    "preferences.retry": "can_manage_notifications",
    "settings.index": "can_manage_settings",
    "settings.portal_settings": "can_manage_settings",
    "settings.business_hours": "can_manage_settings",
    "settings.saved_replies": "can_manage_saved_replies",
    "settings.new_saved_reply": "can_manage_saved_replies",
    "settings.edit_saved_reply": "can_manage_saved_replies",
    "settings.delete_saved_reply": "can_manage_saved_replies",
    "messages.saved_replies_picker": "can_use_saved_replies",
    "messages.saved_reply": "can_use_saved_replies",
    "settings.business_profile": "can_manage_settings",
    "settings.permissions": "can_manage_settings",
    "settings.audit_log": "can_view_audit_log",
    "settings.client_history": "can_view_client_history",
    "replies.index": "can_review_unmatched_replies",
    "replies.show": "can_see_unmatched_reply",
    "replies.file": "can_see_unmatched_reply",
    "replies.discard": "can_see_unmatched_reply",
}

# --- the cast (ROLES and ADMIN_TEAM in tests/cast.py) ---------------------------------------------

# Every role of the cast, and the logged-out visitor last.
ROLE_IDS = [*ROLES, ANONYMOUS]
STAFF = frozenset({"staff_scheduled", "staff_preferred", "staff_unrelated"})
# Business-wide pages: each admin team member reaches their own business's.
ANY_ADMIN_TEAM = ADMIN_TEAM | {"other_business_admin"}
ANY_ADMIN = frozenset({"admin", "other_business_admin"})
# The Rivera household (the client everything is about): who may see it and its feeds.
SEES_CLIENT = ADMIN_TEAM | {"staff_scheduled", "staff_preferred", "client"}
SEES_PRIVATE = frozenset({"admin", "office_manager_private", "client"})


def may_see(role: str, feed: Feed, private_on: bool) -> bool:
    if feed == Feed.CONVERSATION:
        return role in SEES_CLIENT
    return private_on and role in SEES_PRIVATE


def may_delete_clients_message(role: str, feed: Feed, private_on: bool) -> bool:
    """The target messages are the client's own: the client (author), admins, and office
    managers in the Conversation feed may delete them; nobody who cannot see them."""
    if not may_see(role, feed, private_on):
        return False
    return role in ("client", "admin") or (role in ADMIN_TEAM and feed == Feed.CONVERSATION)


def may_see_delivery_of_clients_message(role: str, feed: Feed, private_on: bool) -> bool:
    """The line under the client's own message: its author, and the admin team."""
    return (role == "client" or role in ADMIN_TEAM) and may_see(role, feed, private_on)


def may_unsend_clients_message(role: str, feed: Feed, private_on: bool) -> bool:
    """The target messages are the client's own: only the client, their author, takes one back."""
    return role == "client" and may_see(role, feed, private_on)


# --- the world: rows, URLs and database snapshots -------------------------------------------------

class World:
    """The Rivera household's business, with helpers that make fresh rows for each call."""

    def __init__(self, app, business, household, client_login, make_user, make_message,
                 make_service, make_preferred_sitter):
        self.app, self.business, self.household = app, business, household
        self.client_login = client_login
        self._make_user, self._make_message = make_user, make_message
        self._make_service, self._make_preferred_sitter = make_service, make_preferred_sitter
        self._numbers = itertools.count(1)

    def number(self) -> int:
        return next(self._numbers)

    def url(self, endpoint: str, **values) -> str:
        with self.app.test_request_context():
            return url_for(endpoint, **values)

    def arguments(self, endpoint: str) -> set[str]:
        return set(next(self.app.url_map.iter_rules(endpoint)).arguments)

    def message(self, feed: Feed, author=None, photo: bool = False) -> Message:
        """A message with text found nowhere else, by default the client's own."""
        return self._make_message(self.household, author or self.client_login,
                                  f"Note {self.number()} only for {feed} readers", feed=feed,
                                  files=[("walk.png", PHOTO)] if photo else ())

    def attachment_token(self, message: Message) -> str:
        with self.app.app_context():
            return db.session.scalar(
                select(Attachment.token).where(Attachment.message_id == message.id)
            )

    def staff(self, business: Business | None = None) -> User:
        return self._make_user(Role.STAFF, business=business or self.business,
                               name=f"Spare Sitter {self.number()}")

    def office_manager(self, business: Business) -> User:
        return self._make_user(Role.OFFICE_MANAGER, business=business,
                               name=f"Spare Manager {self.number()}")

    def service(self) -> ScheduledService:
        return self._make_service(self.household, self.staff(), days_from_now=2)

    def current_visit(self, started: bool = False) -> ScheduledService:
        """A walk of the household's assigned sitter (the cast's staff_scheduled, or a spare
        sitter when the test has none) begun a few minutes ago, and pressed Start visit on if
        `started`."""
        with self.app.app_context():
            sitter = db.session.scalar(select(User).where(
                User.business_id == self.business.id, User.name == "Sam Sitter"))
        visit = self._make_service(self.household, sitter or self.staff(),
                                   days_from_now=-0.005)
        if started:
            update_row(self.app, ScheduledService, visit.id,
                       started_at=utcnow() - timedelta(minutes=5))
        return visit

    def report(self) -> int:
        """A report of a current visit, by its sitter: its message's id."""
        visit = self.current_visit()
        with self.app.app_context():
            service = db.session.get(ScheduledService, visit.id)
            report = visit_reports.file(service.staff, service, {},
                                        f"Report {self.number()} of the walk")
            return report.message_id

    def preferred_sitter(self) -> User:
        staff = self.staff()
        self._make_preferred_sitter(self.household, staff)
        return staff

    def set_private_messaging(self, enabled: bool, business: Business | None = None) -> None:
        set_private_messaging(self.app, business or self.business, enabled)

    def load(self, model, row_id):
        with self.app.app_context():
            row = db.session.get(model, row_id)
            db.session.expunge(row)
            return row

    def snapshot(self) -> dict[str, list[dict]]:
        return every_row(self.app)


def _owner(table: str, row: dict):
    return row["id"] if table == "businesses" else row.get("business_id")


def changed_tables(before: dict, after: dict, business_id: int) -> set[str]:
    """Tables whose rows of this business changed."""
    return {
        table for table in before
        if [r for r in before[table] if _owner(table, r) == business_id]
        != [r for r in after[table] if _owner(table, r) == business_id]
    }


def others_unchanged(before: dict, after: dict, business_id: int) -> bool:
    return all(
        [r for r in before[table] if _owner(table, r) != business_id]
        == [r for r in after[table] if _owner(table, r) != business_id]
        for table in before
    )


@pytest.fixture
def world(app, business, household, household_login, make_user, make_message, make_service,
          make_preferred_sitter):
    return World(app, business, household, household_login, make_user, make_message,
                 make_service, make_preferred_sitter)


@pytest.fixture
def browser_as(request, new_client, logged_in):
    """browser_as(role) -> (user or None, a browser logged in as that role through the form)."""

    def make(role: str):
        if role == ANONYMOUS:
            return None, new_client()
        user = request.getfixturevalue(ROLES[role])
        return user, logged_in(user)

    return make


# --- calling and checking -------------------------------------------------------------------------

def call(browser, method: str, url: str, hx: bool, data: dict | None = None):
    """One request, as htmx sends it (HX-Request: true) or as a plain page/form without it."""
    if hx:
        return browser.htmx(method, url, data=data)
    if method == "GET":
        return browser.get(url)
    return browser.submit(url, data)


def login_redirect_problems(response, hx: bool) -> list[str]:
    """Logged out: a page gets a 302 to /login, htmx a 401 telling it to load /login whole."""
    if hx:
        target = response.headers.get("HX-Redirect", "")
        if response.status_code != 401 or urlsplit(target).path != "/login":
            return [f"expected 401 with HX-Redirect to /login, got {response.status_code} "
                    f"HX-Redirect={target!r}"]
        return []
    if response.status_code != 302 or urlsplit(response.location or "").path != "/login":
        return [f"expected 302 to /login, got {response.status_code} to {response.location!r}"]
    return []


@dataclass
class Outcome:
    """What one call must do: 'allowed' (with its status), 'refused' (404) or 'login'."""

    kind: str
    status: int = 404
    writes: frozenset[str] = frozenset()
    actor_business_id: int | None = None


def exercise(world: World, browser, method: str, url: str, hx: bool, outcome: Outcome,
             data: dict | None = None, hidden: tuple[str, ...] = (), shown: tuple[str, ...] = ()):
    """Makes the call and returns (response, problems). Writes (POST) are checked against
    snapshots of the whole database; reads are not, which halves the time of this module."""
    if method != "GET":
        # Before the snapshot: the page the token comes from may mark a feed read.
        browser.csrf_token()
    before = world.snapshot() if method != "GET" else {}
    response = call(browser, method, url, hx, data)
    after = world.snapshot() if method != "GET" else {}
    body = response.get_data().decode("utf-8", "replace")  # files answer with bytes
    if outcome.kind == "login":
        problems = login_redirect_problems(response, hx)
    elif response.status_code != outcome.status:
        problems = [f"expected {outcome.status}, got {response.status_code}"]
    else:
        problems = []
    if outcome.kind == "allowed":
        # The outbox follows posts and deletions whenever someone is to be told; who is told
        # is tested in test_notifications.py.
        changed = changed_tables(before, after, outcome.actor_business_id) - {"notifications"}
        if changed != set(outcome.writes):
            problems.append(f"expected changes in {sorted(outcome.writes)}, got {sorted(changed)}")
        if not others_unchanged(before, after, outcome.actor_business_id):
            problems.append("changed rows of another business")
        if response.status_code == 200:
            problems += [f"does not show {text!r}" for text in shown if text not in body]
    elif before != after:
        problems.append(f"refused, yet changed {sorted(changed_tables_any(before, after))}")
    problems += [f"reveals {text!r}" for text in hidden if text in body]
    return response, problems


def changed_tables_any(before: dict, after: dict) -> set[str]:
    return {table for table in before if before[table] != after[table]}


def labelled(label: str, problems: list[str]) -> list[str]:
    return [f"{label}: {problem}" for problem in problems]


# --- the feed endpoints ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedCase:
    endpoint: str
    method: str
    ok: tuple[int, int]  # the allowed status without / with HX-Request
    # Who may, beyond seeing the target's feed: may_see, or a stricter rule.
    rule: Callable[[str, Feed, bool], bool] = None
    # Whether anyone who sees a feed may do it to their own messages (else the admin team).
    for_authors: bool = True
    writes: frozenset[str] = frozenset()
    # Whether an allowed answer shows the target message's text, without / with HX-Request.
    shows_target: tuple[bool, bool] = (False, False)


# The text erased, an audit event, and the feed's summary (the target is its latest message).
DELETE_WRITES = frozenset({"messages", "audit_events", "feed_summaries"})
FEED_CASES = [
    FeedCase("feeds.show", "GET", (200, 200), shows_target=(True, True)),
    FeedCase("feeds.earlier", "GET", (200, 200), shows_target=(True, True)),
    # The live poll, asked from just before the target: the target is news.
    FeedCase("feeds.updates", "GET", (200, 200), shows_target=(True, True)),
    # A feed tab followed without JavaScript pings this: the page's composer is retired.
    FeedCase("feeds.leave", "POST", (204, 204), writes=frozenset({"retired_composers"})),
    FeedCase("messages.create", "POST", (302, 200),
             writes=frozenset({"messages", "feed_summaries"})),
    FeedCase("messages.show", "GET", (302, 200), shows_target=(False, True)),
    # The htmx confirmation replaces only the message's Delete link.
    FeedCase("messages.confirm_delete", "GET", (200, 200), rule=may_delete_clients_message,
             shows_target=(True, False)),
    FeedCase("messages.delete", "POST", (302, 200), rule=may_delete_clients_message,
             writes=DELETE_WRITES),
    # Its author alone, in the undo window (the target was just written): the page again with
    # the text back in the composer, or the tombstone alone.
    FeedCase("messages.unsend", "POST", (200, 200), rule=may_unsend_clients_message,
             writes=DELETE_WRITES),
    # Where the message went: the admin team and its author; the page form goes to the feed.
    FeedCase("messages.delivery", "GET", (302, 200), rule=may_see_delivery_of_clients_message),
    # Retry of its failed notifications (only the outbox changes): the admin team.
    FeedCase("messages.retry_delivery", "POST", (302, 200), for_authors=False,
             rule=lambda role, feed, on: role in ADMIN_TEAM and may_see(role, feed, on)),
    # Files of a message follow its feed: bytes, thumbnail and the full view page.
    FeedCase("files.download", "GET", (200, 200)),
    FeedCase("files.thumbnail", "GET", (200, 200)),
    FeedCase("files.view", "GET", (200, 200)),
]


def feed_request(world: World, case: FeedCase, feed: Feed, target: Message):
    """URL and form data for one call of a feed endpoint about the target message's feed."""
    values = {"client_id": world.household.id, "feed_name": feed.value, "message_id": target.id}
    if case.endpoint.startswith("files."):
        values["token"] = world.attachment_token(target)
    if case.endpoint == "feeds.leave":
        values["token"] = f"composer-token-{world.number():08}"
    values = {name: value for name, value in values.items()
              if name in world.arguments(case.endpoint)}
    if case.endpoint == "feeds.earlier":
        values["before"] = target.id + 1
    if case.endpoint == "feeds.updates":
        values.update(after=target.id - 1, oldest=target.id - 1, since=0)
    data = {"text": f"Reply {world.number()}"} if case.endpoint == "messages.create" else None
    return world.url(case.endpoint, **values), data


def feed_effect_problems(world, case, user, feed, target, data, response) -> list[str]:
    """What an allowed call did, beyond which tables changed."""
    problems = []
    if response.status_code == 302:
        feed_url = world.url("feeds.show", client_id=world.household.id, feed_name=feed.value)
        if urlsplit(response.location).path != feed_url:
            problems.append(f"redirected to {response.location!r}, not the feed")
    if case.endpoint == "messages.create":
        with world.app.app_context():
            stored = db.session.scalar(select(Message).where(Message.text == data["text"]))
            if (stored.author_id, stored.client_id, stored.feed) != (
                user.id, world.household.id, feed
            ):
                problems.append("stored the message with the wrong author, client or feed")
    if case.endpoint in ("messages.delete", "messages.unsend"):
        deleted = world.load(Message, target.id)
        if deleted.text is not None or deleted.deleted_by_id != user.id:
            problems.append("did not erase the text and record the deleter")
        if deleted.unsent != (case.endpoint == "messages.unsend"):
            problems.append("unsent and deleted were mixed up")
    return problems


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("case", FEED_CASES, ids=lambda case: case.endpoint)
def test_feed_endpoint_answers_role(world, browser_as, stranger_business, case, role):
    # The stranger's own business has Private Messaging on: that must not open ours.
    world.set_private_messaging(True, stranger_business)
    user, browser = browser_as(role)
    problems = []
    for private_on, feed, hx in itertools.product((True, False), Feed, (False, True)):
        world.set_private_messaging(private_on)
        target = world.message(feed, photo=case.endpoint.startswith("files."))
        url, data = feed_request(world, case, feed, target)
        allowed = (case.rule or may_see)(
            role, feed, private_on)
        if user is None:
            outcome = Outcome("login")
        elif allowed:
            outcome = Outcome("allowed", case.ok[hx], case.writes, user.business_id)
        else:
            outcome = Outcome("refused")
        response, found = exercise(
            world, browser, case.method, url, hx, outcome, data,
            hidden=() if allowed and user else (target.text,),
            shown=(target.text,) if case.shows_target[hx] else (),
        )
        if outcome.kind == "allowed" and not found:
            found = feed_effect_problems(world, case, user, feed, target, data, response)
        label = (f"{case.method} {url} ({feed} feed, Private Messaging "
                 f"{'on' if private_on else 'off'}, {'htmx' if hx else 'page'})")
        problems += labelled(label, found)
    assert not problems, f"{role}:\n" + "\n".join(problems)


# Deleting someone's message: every author who can post in a feed, every role as the deleter.
AUTHORS = [(Feed.CONVERSATION, author) for author in
           ("admin", "office_manager", "staff_scheduled", "staff_preferred", "client")]
AUTHORS += [(Feed.PRIVATE, author) for author in ("admin", "office_manager_private", "client")]


def may_delete(role: str, author: str, feed: Feed) -> bool:
    """The author their own; admins anything they see; office managers Conversation ones."""
    if not may_see(role, feed, private_on=True):
        return False
    return role in (author, "admin") or (role in ADMIN_TEAM and feed == Feed.CONVERSATION)


@pytest.mark.parametrize(("feed", "author"), AUTHORS,
                         ids=[f"{feed}-by_{author}" for feed, author in AUTHORS])
def test_delete_answers_each_role_by_author_and_feed(world, browser_as, feed, author):
    world.set_private_messaging(True)
    writer, writer_browser = browser_as(author)
    problems = []
    for role in ROLE_IDS:
        user, browser = (writer, writer_browser) if role == author else browser_as(role)
        target = world.message(feed, author=writer)
        if user is None:
            outcome = Outcome("login")
        elif may_delete(role, author, feed):
            outcome = Outcome("allowed", 302, DELETE_WRITES, user.business_id)
        else:
            outcome = Outcome("refused")
        _, found = exercise(world, browser, "POST", world.url("messages.delete",
                                                              message_id=target.id),
                            False, outcome)
        problems += labelled(role, found)
    assert not problems, "\n".join(problems)


# --- scheduled messages ("Send later") ------------------------------------------------------------

def may_schedule(role: str, feed: Feed, private_on: bool) -> bool:
    """The business's side, in a feed it may post to; a client writes when they write."""
    return role != "client" and may_see(role, feed, private_on)


def may_manage_scheduled(role: str, author: str, feed: Feed, private_on: bool) -> bool:
    """Its author and the admin team, while they may post to its feed."""
    return may_schedule(role, feed, private_on) and (role == author or role in ADMIN_TEAM)


@dataclass(frozen=True)
class ScheduledCase:
    endpoint: str
    method: str
    ok: tuple[int, int]  # the allowed status without / with HX-Request
    writes: frozenset[str]


SCHEDULE_WRITES = frozenset({"scheduled_messages", "audit_events"})
SCHEDULED_CASES = [
    ScheduledCase("messages.edit_scheduled", "GET", (200, 200), frozenset()),
    ScheduledCase("messages.edit_scheduled", "POST", (302, 302), SCHEDULE_WRITES),
    # Posted at once: the message and its feed's summary too.
    ScheduledCase("messages.send_scheduled_now", "POST", (302, 200),
                  SCHEDULE_WRITES | {"messages", "feed_summaries"}),
    ScheduledCase("messages.cancel_scheduled", "POST", (302, 200), SCHEDULE_WRITES),
]
BUSINESS_AUTHORS = [(feed, author) for feed, author in AUTHORS if author != "client"]


def every_role_and_setting(browser_as, author: str, writer_and_browser: tuple):
    """(role, user, browser, private_on, hx) for every role (the author in the browser they
    wrote in), Private Messaging on and off, with and without htmx."""
    writer, writer_browser = writer_and_browser
    for role in ROLE_IDS:
        user, browser = (writer, writer_browser) if role == author else browser_as(role)
        for private_on, hx in itertools.product((True, False), (False, True)):
            yield role, user, browser, private_on, hx


def case_outcome(user, allowed: bool, case: "ScheduledCase", hx: bool) -> Outcome:
    if user is None:
        return Outcome("login")
    if allowed:
        return Outcome("allowed", case.ok[hx], case.writes, user.business_id)
    return Outcome("refused")


def setting_label(role: str, private_on: bool, hx: bool) -> str:
    return f"{role}, Private Messaging {'on' if private_on else 'off'}, hx={hx}"


def scheduled_message(world: World, feed: Feed, author: User) -> ScheduledMessage:
    """A message scheduled an hour ahead, with text found nowhere else."""
    with world.app.app_context():
        row = ScheduledMessage(
            business_id=world.business.id, client_id=world.household.id, feed=feed,
            author_id=author.id, text=f"Scheduled {world.number()} only for its author",
            due_at=utcnow() + timedelta(hours=1),
        )
        db.session.add(row)
        db.session.commit()
        db.session.expunge(row)
        return row


def in_an_hour_in_chicago() -> str:
    return (utcnow() + timedelta(hours=1)).astimezone(CHICAGO).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize("role", ROLE_IDS)
def test_schedule_answers_role(world, browser_as, role):
    user, browser = browser_as(role)
    problems = []
    for private_on, feed, hx in itertools.product((True, False), Feed, (False, True)):
        world.set_private_messaging(private_on)
        text = f"Later {world.number()}"
        data = {"text": text, "send_at": in_an_hour_in_chicago(), "action": "schedule"}
        url = world.url("messages.create", client_id=world.household.id, feed_name=feed.value)
        if user is None:
            outcome = Outcome("login")
        elif may_schedule(role, feed, private_on):
            outcome = Outcome("allowed", (302, 200)[hx], SCHEDULE_WRITES, user.business_id)
        else:
            outcome = Outcome("refused")
        _, found = exercise(world, browser, "POST", url, hx, outcome, data)
        label = f"{feed} feed, Private Messaging {'on' if private_on else 'off'}, hx={hx}"
        problems += labelled(label, found)
    assert not problems, f"{role}:\n" + "\n".join(problems)


@pytest.mark.parametrize(("feed", "author"), BUSINESS_AUTHORS,
                         ids=[f"{feed}-by_{author}" for feed, author in BUSINESS_AUTHORS])
@pytest.mark.parametrize("case", SCHEDULED_CASES, ids=lambda case: f"{case.endpoint}-{case.method}")
def test_scheduled_message_answers_each_role_by_author_and_feed(world, browser_as, case, feed,
                                                                author):
    world.set_private_messaging(True)
    writer_and_browser = browser_as(author)
    writer = writer_and_browser[0]
    problems = []
    for role, user, browser, private_on, hx in every_role_and_setting(browser_as, author,
                                                                      writer_and_browser):
        world.set_private_messaging(True)
        target = scheduled_message(world, feed, writer)
        world.set_private_messaging(private_on)
        allowed = user is not None and may_manage_scheduled(role, author, feed, private_on)
        data = None
        if case.endpoint == "messages.edit_scheduled" and case.method == "POST":
            data = {"text": f"Changed {world.number()}", "send_at": in_an_hour_in_chicago()}
        url = world.url(case.endpoint, scheduled_id=target.id)
        _, found = exercise(world, browser, case.method, url, hx,
                            case_outcome(user, allowed, case, hx), data,
                            hidden=() if allowed else (target.text,),
                            shown=(target.text,) if case.method == "GET" else ())
        problems += labelled(setting_label(role, private_on, hx), found)
    assert not problems, "\n".join(problems)


# --- staff message approval -----------------------------------------------------------------------

def may_review_held(role: str, feed: Feed, private_on: bool) -> bool:
    """The admin team, while they may post to its feed; never its staff author."""
    return role in ADMIN_TEAM and may_see(role, feed, private_on)


HELD_CASES = [
    # Its time has passed (held as written): approving posts it at once.
    ScheduledCase("messages.approve_held", "POST", (302, 200),
                  SCHEDULE_WRITES | {"messages", "feed_summaries"}),
    ScheduledCase("messages.reject_held", "GET", (200, 200), frozenset()),
    ScheduledCase("messages.reject_held", "POST", (302, 200),
                  SCHEDULE_WRITES | {"account_emails"}),
    ScheduledCase("messages.dismiss_rejected", "POST", (302, 200),
                  frozenset({"scheduled_messages"})),
]
# Only a staff member's messages are held; one in Private (none can be written so) shows that
# the feed's rules hold all the same.
HELD_AUTHORS = [(Feed.CONVERSATION, "staff_scheduled"), (Feed.PRIVATE, "admin")]


def held_message(world: World, feed: Feed, author: User, rejected: bool = False,
                 with_photo: bool = False) -> ScheduledMessage:
    """A message awaiting approval since a minute ago (or rejected), text found nowhere else."""
    with world.app.app_context():
        row = ScheduledMessage(
            business_id=world.business.id, client_id=world.household.id, feed=feed,
            author_id=author.id, text=f"Held {world.number()} only for its author",
            due_at=utcnow() - timedelta(minutes=1), held=not rejected,
        )
        if rejected:
            row.status, row.rejection_note = DeliveryStatus.CANCELLED, "Too casual"
        if with_photo:
            row.files = [ScheduledMessageFile(
                business_id=world.business.id, kind=AttachmentKind.IMAGE,
                original_name="walk.png", content_type="image/png", size=len(PHOTO),
                storage_key=storage().save(PHOTO), thumbnail_key=storage().save(PHOTO),
            )]
        db.session.add(row)
        db.session.commit()
        token = row.files[0].token if with_photo else None
        db.session.expunge(row)
        row.file_token = token
        return row


def may_call_held(case: ScheduledCase, role: str, author: str, feed: Feed,
                  private_on: bool) -> bool:
    if case.endpoint == "messages.dismiss_rejected":
        return role == author and may_see(role, feed, private_on)
    return may_review_held(role, feed, private_on)


@pytest.mark.parametrize(("feed", "author"), HELD_AUTHORS,
                         ids=[f"{feed}-by_{author}" for feed, author in HELD_AUTHORS])
@pytest.mark.parametrize("case", HELD_CASES, ids=lambda case: f"{case.endpoint}-{case.method}")
def test_held_message_answers_each_role(world, browser_as, case, feed, author):
    writer_and_browser = browser_as(author)
    writer = writer_and_browser[0]
    problems = []
    for role, user, browser, private_on, hx in every_role_and_setting(browser_as, author,
                                                                      writer_and_browser):
        world.set_private_messaging(True)
        target = held_message(world, feed, writer,
                              rejected=case.endpoint == "messages.dismiss_rejected")
        world.set_private_messaging(private_on)
        allowed = user is not None and may_call_held(case, role, author, feed, private_on)
        data = {"note": "Please rewrite"} if case.method == "POST" else None
        url = world.url(case.endpoint, scheduled_id=target.id)
        _, found = exercise(world, browser, case.method, url, hx,
                            case_outcome(user, allowed, case, hx), data,
                            hidden=() if allowed else (target.text,))
        problems += labelled(setting_label(role, private_on, hx), found)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLE_IDS)
def test_a_held_message_is_never_sent_now_nor_shown_to_other_staff(world, browser_as, role):
    """Send now would skip approval: refused to everyone, its author included. Another staff
    member of the same client never learns it exists."""
    staff, _ = browser_as("staff_scheduled")
    user, browser = browser_as(role) if role != "staff_scheduled" else (staff, _)
    problems = []
    for hx in (False, True):
        target = held_message(world, Feed.CONVERSATION, staff)
        url = world.url("messages.send_scheduled_now", scheduled_id=target.id)
        outcome = Outcome("login") if user is None else Outcome("refused")
        _, found = exercise(world, browser, "POST", url, hx, outcome)
        problems += labelled(f"send now, hx={hx}", found)
        if user is not None and role not in ADMIN_TEAM | {"staff_scheduled"}:
            page = browser.get(world.url("feeds.show", client_id=world.household.id,
                                         feed_name="conversation"))
            if target.text in page.get_data(as_text=True):
                problems.append(f"the feed page shows {target.text!r}")
    assert not problems, f"{role}:\n" + "\n".join(problems)


WAITING_FILE_CASES = [
    ScheduledCase("files.waiting_file", "GET", (200, 200), frozenset()),
    ScheduledCase("files.waiting_thumbnail", "GET", (200, 200), frozenset()),
]


@pytest.mark.parametrize(("feed", "author"), BUSINESS_AUTHORS,
                         ids=[f"{feed}-by_{author}" for feed, author in BUSINESS_AUTHORS])
@pytest.mark.parametrize("case", WAITING_FILE_CASES, ids=lambda case: case.endpoint)
def test_waiting_files_answer_each_role_by_author_and_feed(world, browser_as, case, feed,
                                                           author):
    writer_and_browser = browser_as(author)
    world.set_private_messaging(True)
    target = held_message(world, feed, writer_and_browser[0], with_photo=True)
    problems = []
    for role, user, browser, private_on, hx in every_role_and_setting(browser_as, author,
                                                                      writer_and_browser):
        world.set_private_messaging(private_on)
        allowed = user is not None and may_manage_scheduled(role, author, feed, private_on)
        url = world.url(case.endpoint, token=target.file_token)
        _, found = exercise(world, browser, "GET", url, hx,
                            case_outcome(user, allowed, case, hx))
        problems += labelled(setting_label(role, private_on, hx), found)
    assert not problems, "\n".join(problems)


# --- saved replies in the composer ----------------------------------------------------------------

SAVED_REPLY_CASES = [
    ScheduledCase("messages.saved_replies_picker", "GET", (200, 200), frozenset()),
    # Without htmx, the feed page with the reply in its composer; with it, the filled text.
    ScheduledCase("messages.saved_reply", "GET", (200, 200), frozenset()),
]


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("case", SAVED_REPLY_CASES, ids=lambda case: case.endpoint)
def test_saved_replies_in_the_composer_answer_role(world, browser_as, case, role):
    user, browser = browser_as(role)
    reply_id = _saved_reply(world, world.business)
    problems = []
    for private_on, feed, hx in itertools.product((True, False), Feed, (False, True)):
        world.set_private_messaging(private_on)
        url = world.url(case.endpoint, client_id=world.household.id, feed_name=feed.value,
                        **({"reply_id": reply_id} if "reply_id" in world.arguments(case.endpoint)
                           else {}))
        if user is None:
            outcome = Outcome("login")
        elif may_schedule(role, feed, private_on):  # the business's side, where it may post
            outcome = Outcome("allowed", case.ok[hx], frozenset(), user.business_id)
        else:
            outcome = Outcome("refused")
        _, found = exercise(world, browser, "GET", url, hx, outcome)
        label = f"{feed} feed, Private Messaging {'on' if private_on else 'off'}, hx={hx}"
        problems += labelled(label, found)
    assert not problems, f"{role}:\n" + "\n".join(problems)


# --- client, staff and settings management --------------------------------------------------------

# prepare(world, actor's business) -> (url_for values, form data or None), fresh rows per call.
Prepare = Callable[[World, Business], tuple[dict, dict | None]]


def _client(world, business):
    return {"client_id": world.household.id}, None


def _nothing(world, business):
    return {}, None


def _new_client(world, business):
    # Every field, as a browser sends the form (see the report: a missing pet_name is a 500).
    return {}, {"name": f"New Household {world.number()}", "email": "", "phone": "",
                "address": "", "notes": "", "pet_name": "", "pet_species": ""}


def _add_pet(world, business):
    return {"client_id": world.household.id}, {"name": f"Pet {world.number()}", "species": "Cat"}


def _new_person(world, business):
    number = world.number()
    return {}, {"name": f"New Person {number}", "email": f"new{number}@example.com"}


def _new_login(world, business):
    return {"client_id": world.household.id}, _new_person(world, business)[1]


def _schedule_service(world, business):
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    return {"client_id": world.household.id}, {
        "staff_id": world.staff().id, "title": "Dog walk", "date": day,
        "starts": "10:00", "ends": "10:30",
    }


def _cancel_service(world, business):
    return {"service_id": world.service().id}, None


def _service(world, business):
    return {"service_id": world.service().id}, None


def _edit_service(world, business):
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    return {"service_id": world.service().id}, {
        "title": "Longer walk", "staff_id": "", "date": day, "starts": "10:00",
        "end_date": "", "ends": "11:00", "scope": "one",
    }


def _reassign_service(world, business):
    return {"service_id": world.service().id}, {"staff_id": world.staff().id, "scope": "one"}


def _add_preferred_sitter(world, business):
    return {"client_id": world.household.id}, {"staff_id": world.staff().id}


def _remove_preferred_sitter(world, business):
    return {"client_id": world.household.id, "staff_id": world.preferred_sitter().id}, None


def _spare_client(world, archived: bool = False) -> int:
    """Another client of the household's business, for archiving: the household itself stays
    as every other case needs it."""
    with world.app.app_context():
        business = db.session.get(Business, world.business.id)
        client = clients_service.create_client(business, None,
                                               name=f"Spare Household {world.number()}")
        if archived:
            clients_service.archive_client(None, client)
        return client.id


def _pet(world, archived: bool = False, photo: bool = False) -> int:
    with world.app.app_context():
        client = db.session.get(Client, world.household.id)
        pet = clients_service.add_pet(None, client, name=f"Pet {world.number()}",
                                      species="Cat", notes=None)
        if photo:
            prepared = prepare(Upload("cat.png", PHOTO), max_bytes=10**7, max_pixels=10**7)
            clients_service.update_pet(None, pet, {}, photo=prepared)
        if archived:
            clients_service.archive_pet(None, pet)
        return pet.id


def _client_edit(world, business):
    return {"client_id": world.household.id}, {
        "name": world.household.name, "notes": f"Edited note {world.number()}",
        "phone": "555-010-2030",
    }


def _archive_client(world, business):
    return {"client_id": _spare_client(world)}, {}


def _unarchive_client(world, business):
    return {"client_id": _spare_client(world, archived=True)}, {}


def _household_pet(world, business):
    return {"client_id": world.household.id, "pet_id": _pet(world)}, None


def _pet_edit(world, business):
    return {"client_id": world.household.id, "pet_id": _pet(world)}, {
        "name": f"Renamed {world.number()}", "species": "Cat", "breed": "Tabby",
    }


def _pet_to_archive(world, business):
    return {"client_id": world.household.id, "pet_id": _pet(world)}, {}


def _pet_to_restore(world, business):
    return {"client_id": world.household.id, "pet_id": _pet(world, archived=True)}, {}


def _pet_photo(world, business):
    return {"client_id": world.household.id, "pet_id": _pet(world, photo=True)}, None


def _household_edit(world, business):
    return {"client_id": world.household.id}, {"address": f"{world.number()} Elm Street"}


def _pet_care(world, business):
    return {"client_id": world.household.id, "pet_id": _pet(world)}, {
        "feeding_notes": f"Half a cup, {world.number()} times",
    }


def _import_file(world, business):
    number = world.number()
    content = f"external_id,name\r\nM-{number},Imported {number}\r\n".encode()
    return {}, {"kind": "clients", "file": (io.BytesIO(content), f"import-{number}.csv")}


def _clients_template(world, business):
    return {"kind": "clients"}, None


def _pending_import(world, business):
    # A file uploaded by the first admin of the Rivera household's business (the "admin" of
    # the cast when that role is playing): only its uploader may preview, import or discard it.
    with world.app.app_context():
        owner_id = db.session.scalar(select(User.id).where(
            User.business_id == world.business.id, User.role == Role.ADMIN).order_by(User.id))
    if owner_id is None:
        owner_id = world._make_user(Role.ADMIN, business=world.business,
                                    name=f"Spare Admin {world.number()}").id
    number = world.number()
    with world.app.app_context():
        pending = imports.keep(
            db.session.get(Business, world.business.id), db.session.get(User, owner_id),
            "clients", f"import-{number}.csv",
            f"external_id,name\r\nP-{number},Pending {number}\r\n",
        )
        return {"token": pending.token}, None


def _staff_login(world, **columns):
    # A staff login of the Rivera household's business: only its admin team may manage it.
    staff = world.staff()
    if columns:
        update_row(world.app, User, staff.id, **columns)
    return {"user_id": staff.id}, None


def _invited_staff(world, business):
    return _staff_login(world, password_hash="", invited_at=utcnow())


def _active_staff(world, business):
    return _staff_login(world)


def _deactivated_staff(world, business):
    return _staff_login(world, active=False)


def _bounced_staff(world, business):
    return _staff_login(world, email_bounced_at=utcnow(), email_bounce_reason="550 no such user")


def _approval_rule(world, business):
    values, _ = _staff_login(world)
    return values, {"message_approval": "always"}


def _visit(world, business):
    return {"service_id": world.current_visit().id}, None


def _started_visit(world, business):
    return {"service_id": world.current_visit(started=True).id}, None


def _visit_report(world, business):
    return {"service_id": world.current_visit().id}, {
        "note": f"Walked well {world.number()}", "item-0": "yes", "item-1": "na"}


def _report_message(world, business):
    return {"message_id": world.report()}, None


def _report_note(world, business):
    return {"message_id": world.report()}, {"note": f"Changed note {world.number()}"}


def _visit_settings(world, business):
    return {}, {"checklist": f"Walked\nFed {world.number()}", "record_location": "no"}


def _client_wrote(world, business):
    # The Message Center lists feeds with messages: the household's Conversation has one.
    world.message(Feed.CONVERSATION)
    return {}, None


def _portal_settings(world, business):
    # Turns Private Messaging on and changes the window: a refused call must do neither.
    return {}, {"private_messaging_enabled": "yes",
                "staff_access_days": str(10 + world.number() % 70)}


def _business_hours(world, business):
    # Opens the caller's business on Mondays from a new hour: a refused call must not.
    hour = 6 + world.number() % 10
    return {}, {"open_0": "y", "opens_0": f"{hour:02}:00", "closes_0": "20:00",
                "auto_reply": "yes"}


def _saved_reply(world, business):
    """A saved reply of the caller's business, with a title found nowhere else."""
    with world.app.app_context():
        reply = SavedReply(business_id=business.id, title=f"Reply {world.number()}",
                           text="Hi {first_name}")
        db.session.add(reply)
        db.session.commit()
        return reply.id


def _new_saved_reply(world, business):
    return {}, {"title": f"New reply {world.number()}", "text": "Hi {first_name}"}


def _edit_saved_reply(world, business):
    return ({"reply_id": _saved_reply(world, business)},
            {"title": f"Changed {world.number()}", "text": "Hello {first_name}"})


def _delete_saved_reply(world, business):
    return {"reply_id": _saved_reply(world, business)}, {}


def _business_profile(world, business):
    # Renames the caller's business: a refused call must not.
    return {}, {"name": f"Renamed Pet Care {world.number()}"}


def _permissions(world, business):
    # Grants private access to a new office manager of the caller's business.
    return {}, {"private_messages": str(world.office_manager(business).id)}


def _notification_defaults(world, business):
    # Flips the caller's business default for text messages: a refused call must not.
    current = world.load(Business, business.id).notify_sms_default
    return {}, {"email": "on", "sms": "" if current else "on", "push": "on"}


def _retry(world, business):
    # A failed email of the Rivera household's business: only its admin team may resend it.
    message = world.message(Feed.CONVERSATION)
    with world.app.app_context():
        row = db.session.scalar(select(Notification).where(Notification.message_id == message.id))
        row.status = DeliveryStatus.FAILED
        db.session.commit()
        return {}, {"notification": str(row.id)}


def _queued_reply(world, business):
    # A reply to the Rivera household's Conversation feed waiting in its business's queue.
    with world.app.app_context():
        token = ReplyToken(world.business.id, world.household.id, Feed.CONVERSATION,
                           world.client_login.id)
        row = queue.record_unmatched(
            channel=InboundChannel.EMAIL, dedupe_key=f"{world.number():064d}",
            reason="The reply address is not one the portal gave out.", raw=b"From: x\n\nHi",
            sender="someone@example.org", text="Hi", token=token,
        )
        return {"reply_id": row.id}, None


def _file_reply(world, business):
    values, _ = _queued_reply(world, business)
    return values, {"client_id": str(world.household.id), "feed": "conversation"}


def _discard_reply(world, business):
    values, _ = _queued_reply(world, business)
    return values, {}


@dataclass(frozen=True)
class ManagementCase:
    endpoint: str
    method: str
    allowed: frozenset[str]
    prepare: Prepare
    ok: tuple[int, int] = (200, 200)
    writes: frozenset[str] = frozenset()
    # Roles whose allowed page (without htmx) must name the Rivera household.
    names_household: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        return f"{self.endpoint}-{self.method}"


def _writes(*tables: str) -> frozenset[str]:
    return frozenset({*tables, "audit_events"})


CLIENT_PAGES = ADMIN_TEAM  # one client's management: only the admin team of its business
VISIT_WORKERS = ADMIN_TEAM | {"staff_scheduled"}
UPLOADER = frozenset({"admin"})  # an upload waiting for its confirm: only who uploaded it
MANAGEMENT_CASES = [
    ManagementCase("clients.index", "GET", ANY_ADMIN_TEAM, _nothing, names_household=ADMIN_TEAM),
    ManagementCase("clients.new", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("clients.new", "POST", ANY_ADMIN_TEAM, _new_client, (302, 302),
                   _writes("clients")),
    ManagementCase("clients.profile", "GET", SEES_CLIENT, _client,
                   names_household=SEES_CLIENT - {"client"}),  # the portal says "Messages"
    ManagementCase("clients.add_pet", "POST", CLIENT_PAGES, _add_pet, (302, 302),
                   _writes("pets")),
    ManagementCase("clients.new_login", "GET", CLIENT_PAGES, _client,
                   names_household=CLIENT_PAGES),
    ManagementCase("clients.new_login", "POST", CLIENT_PAGES, _new_login, (302, 302),
                   _writes("users", "account_emails")),
    ManagementCase("clients.schedule_service", "POST", CLIENT_PAGES, _schedule_service,
                   (302, 302), _writes("scheduled_services")),
    ManagementCase("clients.cancel_service", "POST", CLIENT_PAGES, _cancel_service, (302, 302),
                   _writes("scheduled_services")),
    ManagementCase("clients.schedule_service", "GET", CLIENT_PAGES, _client,
                   names_household=CLIENT_PAGES),
    ManagementCase("clients.edit_service", "GET", CLIENT_PAGES, _service,
                   names_household=CLIENT_PAGES),
    ManagementCase("clients.edit_service", "POST", CLIENT_PAGES, _edit_service, (302, 302),
                   _writes("scheduled_services")),
    ManagementCase("clients.reassign_service", "POST", CLIENT_PAGES, _reassign_service,
                   (302, 302), _writes("scheduled_services")),
    # The week's schedule: each admin team its own business's.
    ManagementCase("clients.week_schedule", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("clients.add_preferred_sitter", "POST", CLIENT_PAGES, _add_preferred_sitter,
                   (302, 302), _writes("preferred_sitters")),
    ManagementCase("clients.remove_preferred_sitter", "POST", CLIENT_PAGES,
                   _remove_preferred_sitter, (302, 302), _writes("preferred_sitters")),
    ManagementCase("clients.edit", "GET", CLIENT_PAGES, _client, names_household=CLIENT_PAGES),
    ManagementCase("clients.edit", "POST", CLIENT_PAGES, _client_edit, (302, 302),
                   _writes("clients")),
    ManagementCase("clients.archive", "GET", CLIENT_PAGES, _client,
                   names_household=CLIENT_PAGES),
    ManagementCase("clients.archive", "POST", CLIENT_PAGES, _archive_client, (302, 302),
                   _writes("clients")),
    ManagementCase("clients.unarchive", "POST", CLIENT_PAGES, _unarchive_client, (302, 302),
                   _writes("clients")),
    ManagementCase("clients.edit_pet", "GET", CLIENT_PAGES, _household_pet,
                   names_household=CLIENT_PAGES),
    ManagementCase("clients.edit_pet", "POST", CLIENT_PAGES, _pet_edit, (302, 302),
                   _writes("pets")),
    ManagementCase("clients.archive_pet", "POST", CLIENT_PAGES, _pet_to_archive, (302, 302),
                   _writes("pets")),
    ManagementCase("clients.restore_pet", "POST", CLIENT_PAGES, _pet_to_restore, (302, 302),
                   _writes("pets")),
    # Whoever sees the household sees its pets' photos.
    ManagementCase("clients.pet_photo", "GET", SEES_CLIENT, _pet_photo),
    # The household edits its own details and care notes; nobody else edits them there.
    ManagementCase("clients.edit_household", "GET", frozenset({"client"}), _client),
    ManagementCase("clients.edit_household", "POST", frozenset({"client"}), _household_edit,
                   (302, 302), _writes("clients")),
    ManagementCase("clients.edit_pet_care", "GET", frozenset({"client"}), _household_pet),
    ManagementCase("clients.edit_pet_care", "POST", frozenset({"client"}), _pet_care,
                   (302, 302), _writes("pets")),
    # Clients > Import: the admin team of each business; an upload is its uploader's.
    ManagementCase("clients.import_records", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("clients.import_records", "POST", ANY_ADMIN_TEAM, _import_file, (302, 302),
                   frozenset({"pending_imports"})),
    ManagementCase("clients.import_template", "GET", ANY_ADMIN_TEAM, _clients_template),
    ManagementCase("clients.import_preview", "GET", UPLOADER, _pending_import),
    ManagementCase("clients.import_confirm", "POST", UPLOADER, _pending_import, (302, 302),
                   _writes("clients", "pending_imports")),
    ManagementCase("clients.import_discard", "POST", UPLOADER, _pending_import, (302, 302),
                   frozenset({"pending_imports"})),
    ManagementCase("staff.index", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("staff.new", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("staff.new", "POST", ANY_ADMIN_TEAM, _new_person, (302, 302),
                   _writes("users", "account_emails")),
    # A staff login of the household's business: its admin team, nobody else's.
    ManagementCase("accounts.resend_invitation", "POST", CLIENT_PAGES, _invited_staff,
                   (302, 200), _writes("users", "account_emails")),
    ManagementCase("accounts.deactivate", "POST", CLIENT_PAGES, _active_staff, (302, 200),
                   _writes("users")),
    ManagementCase("accounts.reactivate", "POST", CLIENT_PAGES, _deactivated_staff, (302, 200),
                   _writes("users")),
    ManagementCase("accounts.try_emails_again", "POST", CLIENT_PAGES, _bounced_staff,
                   (302, 200), _writes("users")),
    ManagementCase("accounts.message_approval", "POST", CLIENT_PAGES, _approval_rule,
                   (302, 200), _writes("users")),
    # A visit: its assigned sitter (inside their access window) and the admin team.
    ManagementCase("visits.show", "GET", VISIT_WORKERS, _visit, names_household=VISIT_WORKERS),
    ManagementCase("visits.start", "POST", VISIT_WORKERS, _visit, (302, 302),
                   _writes("scheduled_services")),
    ManagementCase("visits.end", "POST", VISIT_WORKERS, _started_visit, (302, 302),
                   _writes("scheduled_services")),
    ManagementCase("visits.report", "POST", VISIT_WORKERS, _visit_report, (302, 302),
                   frozenset({"messages", "feed_summaries", "visit_reports"})),
    ManagementCase("visits.edit_note", "GET", CLIENT_PAGES, _report_message,
                   names_household=CLIENT_PAGES),
    ManagementCase("visits.edit_note", "POST", CLIENT_PAGES, _report_note, (302, 302),
                   _writes("messages", "visit_reports")),
    ManagementCase("settings.visit_report_settings", "POST", ANY_ADMIN, _visit_settings,
                   (302, 302), _writes("businesses")),
    # A report's thread: whoever sees the Conversation (its writer's own rule is tested in
    # tests/test_visit_reports.py: it needs a visit taken away from them).
    ManagementCase("visits.thread", "GET", SEES_CLIENT, _report_message,
                   names_household=SEES_CLIENT - {"client"}),
    # The household's past visits and reports: the household and the admin team.
    ManagementCase("visits.past", "GET", ADMIN_TEAM | {"client"}, _client,
                   names_household=ADMIN_TEAM),
    ManagementCase("staff.my_clients", "GET", STAFF, _nothing,
                   names_household=frozenset({"staff_scheduled", "staff_preferred"})),
    # Their own visits: the scheduled sitter has one with the household tomorrow.
    ManagementCase("staff.today", "GET", STAFF, _nothing,
                   names_household=frozenset({"staff_scheduled"})),
    ManagementCase("staff.calendar_link", "POST", STAFF, _nothing, (302, 302),
                   _writes("users")),
    # The admin team sees every client's feeds, staff their clients' Conversation feeds.
    ManagementCase("center.index", "GET", ANY_ADMIN_TEAM | STAFF, _client_wrote,
                   names_household=ADMIN_TEAM | {"staff_scheduled", "staff_preferred"}),
    ManagementCase("preferences.business_defaults", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("preferences.business_defaults", "POST", ANY_ADMIN_TEAM,
                   _notification_defaults, (302, 302), _writes("businesses")),
    # The outbox is left out of the compared tables; refusals must still change nothing.
    ManagementCase("preferences.retry", "POST", ANY_ADMIN_TEAM, _retry, (302, 302)),
    ManagementCase("settings.index", "GET", ANY_ADMIN, _nothing),
    ManagementCase("settings.portal_settings", "GET", ANY_ADMIN, _nothing),
    ManagementCase("settings.portal_settings", "POST", ANY_ADMIN, _portal_settings, (302, 302),
                   _writes("businesses")),
    ManagementCase("settings.business_hours", "POST", ANY_ADMIN, _business_hours, (302, 302),
                   _writes("businesses")),
    # Saved replies: the admin team of the business that keeps them.
    ManagementCase("settings.saved_replies", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("settings.new_saved_reply", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("settings.new_saved_reply", "POST", ANY_ADMIN_TEAM, _new_saved_reply,
                   (302, 302), _writes("saved_replies")),
    ManagementCase("settings.edit_saved_reply", "GET", ANY_ADMIN_TEAM,
                   lambda world, business: (_edit_saved_reply(world, business)[0], None)),
    ManagementCase("settings.edit_saved_reply", "POST", ANY_ADMIN_TEAM, _edit_saved_reply,
                   (302, 302), _writes("saved_replies")),
    ManagementCase("settings.delete_saved_reply", "POST", ANY_ADMIN_TEAM, _delete_saved_reply,
                   (302, 302), _writes("saved_replies")),
    ManagementCase("settings.business_profile", "GET", ANY_ADMIN, _nothing),
    ManagementCase("settings.business_profile", "POST", ANY_ADMIN, _business_profile, (302, 302),
                   _writes("businesses")),
    ManagementCase("settings.permissions", "GET", ANY_ADMIN, _nothing),
    ManagementCase("settings.permissions", "POST", ANY_ADMIN, _permissions, (302, 302),
                   _writes("users")),
    ManagementCase("settings.audit_log", "GET", ANY_ADMIN, _nothing),
    ManagementCase("settings.client_history", "GET", CLIENT_PAGES, _client,
                   names_household=CLIENT_PAGES),
    # Unmatched replies: each admin team its own business's queue (private ones are tested
    # in tests/test_unmatched_replies.py).
    ManagementCase("replies.index", "GET", ANY_ADMIN_TEAM, _nothing),
    ManagementCase("replies.show", "GET", CLIENT_PAGES, _queued_reply, (302, 200)),
    ManagementCase("replies.discard", "GET", CLIENT_PAGES, _queued_reply),
    ManagementCase("replies.discard", "POST", CLIENT_PAGES, _discard_reply, (302, 200),
                   _writes("inbound_messages")),
    ManagementCase("replies.file", "POST", CLIENT_PAGES, _file_reply, (302, 200),
                   _writes("inbound_messages", "messages", "feed_summaries")),
]


@pytest.mark.parametrize("role", ROLE_IDS)
def test_management_endpoints_answer_role(world, browser_as, stranger_business, role):
    # One login per role, then every case: logins are most of the cost of this module.
    user, browser = browser_as(role)
    actor_business = stranger_business if role == "other_business_admin" else world.business
    problems = []
    for case, hx in itertools.product(MANAGEMENT_CASES, (False, True)):
        values, data = case.prepare(world, actor_business)
        url = world.url(case.endpoint, **values)
        if user is None:
            outcome = Outcome("login")
        elif role in case.allowed:
            outcome = Outcome("allowed", case.ok[hx], case.writes, user.business_id)
        else:
            outcome = Outcome("refused")
        # Whoever may not see the household never gets a page that names it.
        hidden = () if role in SEES_CLIENT else (world.household.name,)
        shown = (world.household.name,) if role in case.names_household and not hx else ()
        _, found = exercise(world, browser, case.method, url, hx, outcome, data, hidden, shown)
        problems += labelled(f"{case.endpoint} {case.method} {url} ({'htmx' if hx else 'page'})",
                             found)
    assert not problems, f"{role}:\n" + "\n".join(problems)


# --- access that ends mid-session -----------------------------------------------------------------

def _cancel_services_as_admin(world, request, viewer):
    admin = request.getfixturevalue("logged_in")(request.getfixturevalue("admin"))
    with world.app.app_context():
        services = list(db.session.scalars(
            select(ScheduledService.id).where(ScheduledService.staff_id == viewer.id)))
    for service_id in services:
        response = admin.submit(world.url("clients.cancel_service", service_id=service_id))
        assert response.status_code == 302


def _reassign_services_as_admin(world, request, viewer):
    """The staff member's visits go to someone else: the old staff member loses access."""
    admin = request.getfixturevalue("logged_in")(request.getfixturevalue("admin"))
    other = world.staff()
    with world.app.app_context():
        services = list(db.session.scalars(
            select(ScheduledService.id).where(ScheduledService.staff_id == viewer.id)))
    for service_id in services:
        response = admin.submit(world.url("clients.reassign_service", service_id=service_id),
                                {"staff_id": other.id, "scope": "one"})
        assert response.status_code == 302


def _unmark_preferred_sitter_as_admin(world, request, viewer):
    admin = request.getfixturevalue("logged_in")(request.getfixturevalue("admin"))
    response = admin.submit(world.url("clients.remove_preferred_sitter",
                                      client_id=world.household.id, staff_id=viewer.id))
    assert response.status_code == 302


def _revoke_private_access(world, request, viewer):
    grant_private_access(world.app, viewer, False)


def _deactivate(world, request, viewer):
    update_row(world.app, User, viewer.id, active=False)


def _turn_private_messaging_off(world, request, viewer):
    world.set_private_messaging(False)


@dataclass(frozen=True)
class Change:
    role: str
    feed: Feed
    apply: Callable
    then: str = "refused"  # or "login"


CHANGES = {
    "service_cancelled": Change("staff_scheduled", Feed.CONVERSATION, _cancel_services_as_admin),
    "service_reassigned": Change("staff_scheduled", Feed.CONVERSATION,
                                 _reassign_services_as_admin),
    "preferred_sitter_removed": Change("staff_preferred", Feed.CONVERSATION,
                                       _unmark_preferred_sitter_as_admin),
    "private_access_revoked": Change("office_manager_private", Feed.PRIVATE,
                                     _revoke_private_access),
    "admin_deactivated": Change("admin", Feed.CONVERSATION, _deactivate, "login"),
    "staff_deactivated": Change("staff_scheduled", Feed.CONVERSATION, _deactivate, "login"),
    "private_setting_turned_off_for_client": Change("client", Feed.PRIVATE,
                                                    _turn_private_messaging_off),
    "private_setting_turned_off_for_admin": Change("admin", Feed.PRIVATE,
                                                   _turn_private_messaging_off),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES)
def test_access_ends_on_next_request_after_change(world, browser_as, request, change):
    # The same logged-in browser: every feed endpoint is allowed before the change and refused
    # on the very next request after it. Targets are the viewer's own messages, which every
    # viewer here may also delete.
    world.set_private_messaging(True)
    user, browser = browser_as(change.role)
    problems = []
    for phase in ("before", "after"):
        if phase == "after":
            change.apply(world, request, user)
        for case, hx in itertools.product(FEED_CASES, (False, True)):
            if not case.for_authors and change.role not in ADMIN_TEAM:
                continue
            target = world.message(change.feed, author=user,
                                   photo=case.endpoint.startswith("files."))
            url, data = feed_request(world, case, change.feed, target)
            if phase == "before":
                outcome = Outcome("allowed", case.ok[hx], case.writes, user.business_id)
            else:
                outcome = Outcome(change.then)
            hidden = (target.text,) if phase == "after" else ()
            _, found = exercise(world, browser, case.method, url, hx, outcome, data, hidden)
            problems += labelled(
                f"{phase}: {case.endpoint} {case.method} {url} ({'htmx' if hx else 'page'})",
                found)
    assert not problems, f"{change.role}:\n" + "\n".join(problems)


# --- public and logged-in endpoints ---------------------------------------------------------------

@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("endpoint", PUBLIC)
def test_public_endpoint_answers_anonymous(world, client, endpoint, hx):
    response = call(client, "GET", world.url(endpoint, **PUBLIC[endpoint]), hx)
    response.close()  # static files are streamed
    assert response.status_code == 200


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("endpoint", SIGNED)
def test_signed_endpoint_refuses_every_role_without_the_signature(
    world, browser_as, endpoint, role
):
    """A login is no signature: unsigned, or signed with another key, nothing changes."""
    world.app.config["TWILIO_AUTH_TOKEN"] = "the-account-token"
    _, browser = browser_as(role)
    url = world.url(endpoint)
    data = {"MessageSid": "SM1", "MessageStatus": "undelivered"}
    for hx, headers in itertools.product((False, True), ({}, {"X-Twilio-Signature": "Zm9v"})):
        browser.csrf_token() if role != ANONYMOUS else None
        before = world.snapshot()
        response = browser.post(url, data=data, headers={
            **headers, **({"HX-Request": "true"} if hx else {})})
        assert response.status_code == 403, (hx, headers)
        assert world.snapshot() == before


@pytest.mark.parametrize("role", ROLE_IDS)
def test_secret_url_answers_any_role_by_its_token_alone(world, browser_as, role):
    """The calendar feed: a real token answers whoever asks (a phone calendar has no login),
    a wrong one 404 to everyone, the logged-in included."""
    staff = world.staff()
    update_row(world.app, User, staff.id, calendar_token=f"token-{world.number()}-secret")
    token = world.load(User, staff.id).calendar_token
    _, browser = browser_as(role)
    for hx in (False, True):
        assert call(browser, "GET", world.url("staff.calendar_feed", token=token),
                    hx).status_code == 200
        assert call(browser, "GET", world.url("staff.calendar_feed", token=token + "x"),
                    hx).status_code == 404


def test_login_page_sends_logged_in_user_home(browser_as):
    _, browser = browser_as("staff_unrelated")
    response = browser.get("/login")
    assert (response.status_code, response.location) == (302, "/today")


HOMES = {
    "admin": "/clients",
    "office_manager": "/clients",
    "office_manager_private": "/clients",
    "staff_scheduled": "/today",
    "staff_preferred": "/today",
    "staff_unrelated": "/today",
    "client": "/clients/{household}",
    "other_client": "/clients/{other_household}",
    "other_business_admin": "/clients",
}


@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("role", ROLE_IDS)
def test_home_redirects_role_to_its_start_page(world, browser_as, other_household, role, hx):
    _, browser = browser_as(role)
    response = call(browser, "GET", world.url("auth.home"), hx)
    if role == ANONYMOUS:
        assert not login_redirect_problems(response, hx)
    else:
        home = HOMES[role].format(household=world.household.id,
                                  other_household=other_household.id)
        assert (response.status_code, response.location) == (302, home)


@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("role", ["admin", "client", ANONYMOUS])
def test_logout_ends_session_for_role(world, browser_as, role, hx):
    _, browser = browser_as(role)
    response = call(browser, "POST", world.url("auth.logout"), hx)
    assert (response.status_code, urlsplit(response.location).path) == (302, "/login")
    assert not login_redirect_problems(browser.get(world.url("auth.home")), hx=False)


# --- the classification is complete and true ------------------------------------------------------

IGNORED_METHODS = {"HEAD", "OPTIONS"}
COVERED = {(case.endpoint, case.method)
           for case in FEED_CASES + MANAGEMENT_CASES + SCHEDULED_CASES + SAVED_REPLY_CASES
           + HELD_CASES + WAITING_FILE_CASES}


def test_classify_every_endpoint(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    unclassified = (
        endpoints - PUBLIC.keys() - LOGGED_IN.keys() - GUARDED.keys() - SIGNED.keys()
        - SECRET_URL.keys() - PUBLIC_ONCE_SET.keys()
    )
    assert not unclassified, (
        "Classify these endpoints in PUBLIC, PUBLIC_ONCE_SET, LOGGED_IN, SIGNED, SECRET_URL or "
        "GUARDED of "
        "tests/test_access_matrix.py "
        f"(and give guarded ones matrix cases): {sorted(unclassified)}"
    )


def test_classify_only_existing_endpoints(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    classified = [*PUBLIC, *PUBLIC_ONCE_SET, *LOGGED_IN, *GUARDED, *SIGNED, *SECRET_URL]
    assert sorted(set(classified) - endpoints) == []
    assert len(classified) == len(set(classified)), "an endpoint is in two classes"


def test_cover_every_guarded_endpoint(app):
    # Every method of every guarded endpoint has matrix cases, and nothing else does.
    needed = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules() if rule.endpoint in GUARDED
        for method in rule.methods - IGNORED_METHODS
    }
    assert sorted(needed - COVERED) == [], "guarded endpoint methods without matrix cases"
    assert sorted(COVERED - needed) == [], "matrix cases for methods the app does not have"


def test_name_real_policy_rules_for_guarded_endpoints():
    assert {rule for rule in GUARDED.values() if not callable(getattr(policy, rule, None))} == set()


def test_classify_logged_in_endpoints_with_their_methods(app):
    methods = {rule.endpoint: rule.methods - IGNORED_METHODS for rule in app.url_map.iter_rules()}
    assert {
        endpoint: methods[endpoint] for endpoint in LOGGED_IN
    } == LOGGED_IN


def test_view_foreign_client_id_answers_like_missing_id(world, browser_as, make_client,
                                                        stranger_business):
    # A client id of another business answers exactly like an id that does not exist.
    foreign = make_client(business=stranger_business, name="Rival Household")
    _, browser = browser_as("admin")
    missing = max(foreign.id, world.household.id) + 1000
    for client_id in (foreign.id, missing):
        for endpoint in ("clients.profile", "feeds.show"):
            values = {"client_id": client_id}
            if endpoint == "feeds.show":
                values["feed_name"] = "conversation"
            response = browser.get(world.url(endpoint, **values))
            assert response.status_code == 404
            assert "Rival Household" not in response.get_data(as_text=True)


# --- security headers on every page and fragment the URL map has ----------------------------------

def _values_for(world, endpoint: str) -> dict | None:
    """url_for values of a GET that reaches the endpoint, from the access matrix's cases."""
    if endpoint in PUBLIC:
        return PUBLIC[endpoint]
    if endpoint in LOGGED_IN:
        return {}
    if endpoint in SECRET_URL:
        return {"token": "not-a-token"}  # 404, with the headers of every response
    if endpoint in PUBLIC_ONCE_SET:  # the world's business has no logo: 404, with its headers
        return {"business_id": world.business.id, **(
            {"name": "icon-192"} if "name" in world.arguments(endpoint) else {})}
    for case in FEED_CASES:
        if case.endpoint == endpoint and case.method == "GET":
            target = world.message(Feed.CONVERSATION, photo=endpoint.startswith("files."))
            url, _ = feed_request(world, case, Feed.CONVERSATION, target)
            return {"_url": url}
    for case in MANAGEMENT_CASES:
        if case.endpoint == endpoint and case.method == "GET":
            return case.prepare(world, world.business)[0]
    for case in SCHEDULED_CASES + HELD_CASES + WAITING_FILE_CASES:
        if case.endpoint == endpoint and case.method == "GET":
            with world.app.app_context():
                admin = db.session.scalar(select(User).where(
                    User.business_id == world.business.id, User.role == Role.ADMIN))
            if case in WAITING_FILE_CASES:
                target = held_message(world, Feed.CONVERSATION, admin, with_photo=True)
                return {"token": target.file_token}
            if case in HELD_CASES:
                return {"scheduled_id": held_message(world, Feed.CONVERSATION, admin).id}
            return {"scheduled_id": scheduled_message(world, Feed.CONVERSATION, admin).id}
    if endpoint in {case.endpoint for case in SAVED_REPLY_CASES}:
        values = {"client_id": world.household.id, "feed_name": "conversation"}
        if "reply_id" in world.arguments(endpoint):
            values["reply_id"] = _saved_reply(world, world.business)
        return values
    return None


def _get_endpoints(app) -> list[str]:
    return sorted({rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods})


def _crawl(world, browser) -> list[tuple[str, object]]:
    """(label, response) for every GET endpoint, as a page and as htmx asks for it."""
    found = []
    for endpoint in _get_endpoints(world.app):
        values = _values_for(world, endpoint)
        assert values is not None, f"{endpoint}: give it a case above"
        url = values.get("_url") or world.url(endpoint, **values)
        for hx in (False, True):
            response = browser.get(url, headers={"HX-Request": "true"} if hx else {})
            response.close()  # files and static assets are streamed
            found.append((f"{endpoint} {url} ({'htmx' if hx else 'page'})", response))
    return found


def _directives(header: str) -> dict[str, str]:
    """A Content-Security-Policy as directive -> sources, e.g. {"script-src": "'self'"}."""
    directives = {}
    for part in header.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            directives[name] = sources.strip()
    return directives


def _header_problems(response, production: bool) -> list[str]:
    headers = response.headers
    problems = []
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    for name in ("Referrer-Policy", "Permissions-Policy"):
        if not headers.get(name):
            problems.append(f"no {name}")
    if production != ("Strict-Transport-Security" in headers):
        problems.append(f"Strict-Transport-Security {'missing' if production else 'sent'}")
    if response.mimetype != "text/html":
        return problems
    csp = _directives(headers.get("Content-Security-Policy", ""))
    script_src = csp.get("script-src", csp.get("default-src", ""))
    if not script_src or "'unsafe-inline'" in script_src or "'unsafe-eval'" in script_src:
        problems.append(f"script-src {script_src!r}")
    for directive in ("object-src", "base-uri", "frame-ancestors"):
        if csp.get(directive) != "'none'":
            problems.append(f"{directive} {csp.get(directive)!r}")
    if headers.get("Cache-Control") != "no-store":
        problems.append(f"Cache-Control {headers.get('Cache-Control')!r}")
    if "HX-Request" not in response.vary:
        problems.append(f"Vary {headers.get('Vary')!r}")
    return problems


@pytest.mark.parametrize("production", [False, True], ids=["development", "production"])
@pytest.mark.parametrize("role", ["admin", "assigned_staff", "household_login"])
def test_every_get_endpoint_carries_security_headers(app, world, logged_in, request, role,
                                                     production):
    app.config["PRODUCTION"] = production
    browser = logged_in(request.getfixturevalue(role))
    responses = _crawl(world, browser)
    problems = [f"{label} [{response.status_code}]: {problem}"
                for label, response in responses
                for problem in _header_problems(response, production)]
    assert not problems, "\n".join(problems)
    # The crawl reached pages and fragments, not just refusals.
    assert sum(response.status_code == 200 for _, response in responses) > len(responses) / 3


def test_anonymous_pages_carry_security_headers(app, world, client):
    for endpoint, values in PUBLIC.items():
        response = client.get(world.url(endpoint, **values))
        response.close()
        assert not _header_problems(response, production=False), endpoint
