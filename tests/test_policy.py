"""portal/policy.py, rule by rule, for every role.

Each question is asked in its own request context: the policy caches staff access per request in
flask.g, and a real request never outlives the change that revokes access. Rows are loaded fresh
inside that context because the factories hand back detached objects.

The expected answers below are written out from the access rules of the issue, not derived from
the policy, so that a change to the policy that breaks a rule shows up here.
"""

from datetime import timedelta

import pytest
from flask_login import AnonymousUserMixin
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from portal import policy
from portal.extensions import db
from portal.models import (
    Business,
    Client,
    Feed,
    PreferredSitter,
    Role,
    ScheduledService,
    ServiceStatus,
    User,
    utcnow,
)

from .cast import ADMIN_TEAM, ANONYMOUS, ROLES
from .helpers import set_private_messaging, update_row

# --- the cast (ROLES in tests/cast.py; None below is the anonymous user) --------------------------

# Who sees the Rivera household's Conversation feed, and its Private feed while the setting is on.
SEES_CONVERSATION = ADMIN_TEAM | {"staff_scheduled", "staff_preferred", "client"}
SEES_PRIVATE = {"admin", "office_manager_private", "client"}


@pytest.fixture
def person(request):
    """person("staff_preferred"): the user playing that role, made on first use."""
    return lambda role: request.getfixturevalue(ROLES[role])


def _fresh(value):
    if value is None:
        return AnonymousUserMixin()
    if isinstance(value, db.Model):
        return db.session.get(type(value), value.id)
    return value


def ask(app, rule, *args):
    """rule(*args) in a request of its own, with every row reloaded in it; None is anonymous."""
    with app.test_request_context():
        return rule(*(_fresh(arg) for arg in args))


def cancel_every_service(app):
    with app.app_context():
        for service in db.session.scalars(select(ScheduledService)):
            service.status = ServiceStatus.CANCELLED
        db.session.commit()


def visible_client_names(user) -> list[str]:
    return list(db.session.scalars(
        policy.clients_visible_to(user).with_only_columns(Client.name).order_by(Client.name)
    ))


def feed_staff_names(client, business) -> list[str]:
    return [staff.name for staff in policy.staff_with_feed_access(client, business)]


def staff_access_everywhere(app, staff, client) -> dict[str, bool]:
    """The same question asked of every rule that answers it, which must all agree."""
    return {
        "can_view_client": ask(app, policy.can_view_client, staff, client),
        "conversation": ask(app, policy.can_view_feed, staff, client, Feed.CONVERSATION),
        "listed_in_clients_visible_to": client.name in ask(app, visible_client_names, staff),
        "listed_in_staff_with_feed_access": staff.name in ask(
            app, lambda c: feed_staff_names(c, db.session.get(Business, c.business_id)), client
        ),
        "has_access_in_staff_roster": staff.name in ask(
            app, lambda c: roster_names_with_access(c, db.session.get(Business, c.business_id)),
            client,
        ),
    }


def roster_names_with_access(client, business) -> list[str]:
    return [member.name for member in policy.staff_roster(client, business) if member.has_access]


def everywhere(allowed: bool) -> dict[str, bool]:
    return dict.fromkeys(
        ["can_view_client", "conversation", "listed_in_clients_visible_to",
         "listed_in_staff_with_feed_access", "has_access_in_staff_roster"], allowed,
    )


# --- viewing clients and feeds, per role ----------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_view_client_follows_role(app, person, household, role):
    assert ask(app, policy.can_view_client, person(role), household) is (role in SEES_CONVERSATION)


@pytest.mark.parametrize("setting", ["setting_on", "setting_off"])
@pytest.mark.parametrize("feed", list(Feed), ids=str)
@pytest.mark.parametrize("role", ROLES)
def test_view_feed_follows_role_feed_and_setting(app, person, business, household, role, feed,
                                                  setting):
    user = person(role)
    set_private_messaging(app, business, setting == "setting_on")
    if feed == Feed.CONVERSATION:
        expected = role in SEES_CONVERSATION
    else:
        expected = setting == "setting_on" and role in SEES_PRIVATE
    assert ask(app, policy.can_view_feed, user, household, feed) is expected
    # Posting is allowed exactly where reading is, and the tabs list the same feeds.
    assert ask(app, policy.can_post, user, household, feed) is expected
    assert (feed in ask(app, policy.visible_feeds, user, household)) is expected


def test_view_feed_refuses_private_to_staff_even_when_their_business_allows_it(
    app, business, household, assigned_staff, preferred_sitter
):
    # Both kinds of staff access at once, on a business with Private Messaging on: still no.
    set_private_messaging(app, business, True)
    for staff in (assigned_staff, preferred_sitter):
        assert ask(app, policy.can_view_feed, staff, household, Feed.PRIVATE) is False


def test_view_feed_refuses_other_business_admin_whose_business_has_private_on(
    app, stranger_business, stranger_admin, household
):
    # The viewer's own setting must not open another business's feeds.
    set_private_messaging(app, stranger_business, True)
    for feed in Feed:
        assert ask(app, policy.can_view_feed, stranger_admin, household, feed) is False


@pytest.mark.parametrize("feed", list(Feed), ids=str)
def test_view_refused_to_anonymous(app, business, household, feed):
    set_private_messaging(app, business, True)
    assert ask(app, policy.can_view_client, None, household) is False
    assert ask(app, policy.can_view_feed, None, household, feed) is False
    assert ask(app, policy.can_post, None, household, feed) is False


@pytest.mark.parametrize("role", ["admin", "office_manager_private", "client"])
def test_view_refused_to_deactivated_user(app, person, business, household, role):
    # Flask-Login's UserMixin is unauthenticated while inactive, so every rule says no.
    set_private_messaging(app, business, True)
    user = person(role)
    update_row(app, User, user.id, active=False)
    assert ask(app, policy.can_view_client, user, household) is False
    assert ask(app, policy.visible_feeds, user, household) == []


# --- staff access: preferred sitter, or a live service inside the window --------------------------

STAFF_SCHEDULES = {
    # id: (days from now the service starts (it lasts 30 minutes), status, access expected)
    "service_tomorrow": (1, None, True),
    "service_in_sixty_days": (60, None, False),  # beyond the window: not yet
    "service_in_six_days": (6, None, True),
    "service_in_progress": (-0.01, None, True),
    "service_six_days_ago": (-6, None, True),
    "service_completed_yesterday": (-1, ServiceStatus.COMPLETED, True),
    "service_eight_days_ago": (-8, None, False),
    "service_cancelled_tomorrow": (1, ServiceStatus.CANCELLED, False),
    "service_cancelled_yesterday": (-1, ServiceStatus.CANCELLED, False),
}


@pytest.mark.parametrize(("days_from_now", "status", "expected"), STAFF_SCHEDULES.values(),
                         ids=STAFF_SCHEDULES)
def test_staff_access_follows_schedule(app, make_user, make_service, business, household,
                                       days_from_now, status, expected):
    staff = make_user(Role.STAFF, name="Sam Sitter")
    make_service(household, staff, days_from_now=days_from_now, status=status)
    set_private_messaging(app, business, True)
    assert staff_access_everywhere(app, staff, household) == everywhere(expected)
    # Whatever the schedule, never the Private feed.
    assert ask(app, policy.can_view_feed, staff, household, Feed.PRIVATE) is False


def test_staff_access_refused_without_service_or_preference(app, unassigned_staff, household):
    assert staff_access_everywhere(app, unassigned_staff, household) == everywhere(False)


def test_staff_access_refused_for_service_with_another_client(
    app, make_user, make_service, household, other_household
):
    staff = make_user(Role.STAFF)
    make_service(other_household, staff, days_from_now=1)
    assert staff_access_everywhere(app, staff, household) == everywhere(False)
    assert staff_access_everywhere(app, staff, other_household) == everywhere(True)


def test_staff_access_granted_to_preferred_sitter_without_service(app, preferred_sitter,
                                                                   household):
    assert staff_access_everywhere(app, preferred_sitter, household) == everywhere(True)


def test_staff_access_granted_to_preferred_sitter_whose_services_are_old_or_cancelled(
    app, preferred_sitter, make_service, household
):
    make_service(household, preferred_sitter, days_from_now=-30)
    make_service(household, preferred_sitter, days_from_now=1, status=ServiceStatus.CANCELLED)
    assert staff_access_everywhere(app, preferred_sitter, household) == everywhere(True)


def test_staff_access_refused_to_staff_of_other_business(
    app, make_user, make_service, make_preferred_sitter, stranger_business, household
):
    # Rows that should never exist (a service and a preference across businesses) still grant
    # nothing: the business check comes first.
    outsider = make_user(Role.STAFF, business=stranger_business, name="Olly Outsider")
    make_service(household, outsider, days_from_now=1)
    make_preferred_sitter(household, outsider)
    assert staff_access_everywhere(app, outsider, household) == everywhere(False)


def test_staff_access_refused_to_deactivated_staff(app, make_user, make_service,
                                                   make_preferred_sitter, household):
    staff = make_user(Role.STAFF, name="Dee Deactivated")
    make_service(household, staff, days_from_now=1)
    make_preferred_sitter(household, staff)
    update_row(app, User, staff.id, active=False)
    assert staff_access_everywhere(app, staff, household) == everywhere(False)


@pytest.mark.parametrize(
    ("access_days", "days_from_now", "expected"),
    [(3, -2, True), (3, -4, False), (30, -20, True), (0, -0.01, True), (0, -0.1, False)],
    ids=["3_days_service_2_days_ago", "3_days_service_4_days_ago", "30_days_service_20_days_ago",
         "0_days_service_in_progress", "0_days_service_ended_2_hours_ago"],
)
def test_staff_access_window_follows_business_setting(app, make_user, make_service, business,
                                                      household, access_days, days_from_now,
                                                      expected):
    update_row(app, Business, business.id, staff_access_days=access_days)
    staff = make_user(Role.STAFF)
    make_service(household, staff, days_from_now=days_from_now)
    assert staff_access_everywhere(app, staff, household) == everywhere(expected)


def test_staff_access_window_includes_service_ending_exactly_at_window_start(
    app, assigned_staff, household
):
    # "Ended from 7 days ago onward": the bound itself is inside the window.
    def access(staff, client, shift):
        service = db.session.scalar(select(ScheduledService).where(
            ScheduledService.staff_id == staff.id, ScheduledService.client_id == client.id))
        window = policy.StaffWindow(service.ends_at + shift, service.starts_at)
        clause = policy.staff_access_clause(staff.id, client.id, window)
        return bool(db.session.scalar(select(clause)))

    assert ask(app, access, assigned_staff, household, timedelta(0)) is True
    assert ask(app, access, assigned_staff, household, timedelta(microseconds=1)) is False


def test_staff_access_window_reaches_staff_access_days_either_side_of_now(app, make_business):
    business = make_business(staff_access_days=7)
    now = utcnow()
    assert policy.staff_access_window(business, now) == policy.StaffWindow(
        now - timedelta(days=7), now + timedelta(days=7))
    assert policy.staff_access_window(make_business(staff_access_days=0), now) == (
        policy.StaffWindow(now, now))


def test_staff_access_stops_on_next_request_after_service_cancelled(app, assigned_staff,
                                                                     household):
    assert ask(app, policy.can_view_client, assigned_staff, household) is True
    cancel_every_service(app)
    assert ask(app, policy.can_view_client, assigned_staff, household) is False


def test_staff_access_stops_on_next_request_after_preference_removed(app, preferred_sitter,
                                                                      household):
    assert ask(app, policy.can_view_client, preferred_sitter, household) is True
    with app.app_context():
        db.session.execute(PreferredSitter.__table__.delete())
        db.session.commit()
    assert ask(app, policy.can_view_client, preferred_sitter, household) is False


# --- lists: clients_visible_to and staff_with_feed_access -----------------------------------------

RIVERA, OKAFOR, RIVAL_CLIENT = "The Rivera Household", "The Okafor Household", "Rival Client"
VISIBLE_CLIENTS = {
    "admin": [OKAFOR, RIVERA],
    "office_manager": [OKAFOR, RIVERA],
    "office_manager_private": [OKAFOR, RIVERA],
    "staff_scheduled": [RIVERA],
    "staff_preferred": [RIVERA],
    "staff_unrelated": [],
    "client": [RIVERA],
    "other_client": [OKAFOR],
    "other_business_admin": [RIVAL_CLIENT],
}


@pytest.mark.parametrize("role", ROLES)
def test_list_clients_visible_to_role(app, person, make_client, household, other_household,
                                      stranger_business, role):
    make_client(business=stranger_business, name=RIVAL_CLIENT)
    assert ask(app, visible_client_names, person(role)) == VISIBLE_CLIENTS[role]


def test_list_clients_visible_to_staff_leaves_out_expired_and_cancelled(
    app, make_user, make_client, make_service, household
):
    staff = make_user(Role.STAFF)
    for name, days, status in [("Old", -8, None), ("Cancelled", 2, ServiceStatus.CANCELLED),
                               ("Recent", -6, None), ("Next", 1, None)]:
        make_service(make_client(name=name), staff, days_from_now=days, status=status)
    assert ask(app, visible_client_names, staff) == ["Next", "Recent"]


def test_list_staff_with_feed_access_names_only_current_staff(
    app, make_user, make_service, make_preferred_sitter, business, household, other_household,
    stranger_business,
):
    def staff(name, **fields):
        return make_user(Role.STAFF, name=name, **fields)

    make_service(household, staff("Zoe Scheduled"), days_from_now=2)
    make_preferred_sitter(household, staff("Amy Preferred"))
    both = staff("Bea Both")  # listed once although she qualifies twice
    make_service(household, both, days_from_now=1)
    make_service(household, both, days_from_now=-2)
    make_preferred_sitter(household, both)
    make_service(household, staff("Cal Cancelled"), days_from_now=1,
                 status=ServiceStatus.CANCELLED)
    make_service(household, staff("Olaf Old"), days_from_now=-9)
    make_service(other_household, staff("Nell Neighbour"), days_from_now=1)
    staff("Uma Unassigned")
    make_preferred_sitter(household, staff("Dee Deactivated", active=False))
    outsider = make_user(Role.STAFF, business=stranger_business, name="Olly Outsider")
    make_service(household, outsider, days_from_now=1)
    make_user(Role.ADMIN)  # the admin team is not "staff with access"

    names = ask(app, feed_staff_names, household, business)
    assert names == ["Amy Preferred", "Bea Both", "Zoe Scheduled"]


# --- feed_audience: the line beside Send ----------------------------------------------------------

def audience(app, viewer, client, feed):
    return ask(app, policy.feed_audience, viewer, client, feed)


@pytest.mark.parametrize("role", ["admin", "office_manager_private"])
def test_describe_private_audience_to_admin_team(app, person, household, role):
    assert audience(app, person(role), household, Feed.PRIVATE) == (
        "Visible to the client and the admin team. Staff never see private messages."
    )


def test_describe_private_audience_to_client(app, household_login, household):
    assert audience(app, household_login, household, Feed.PRIVATE) == (
        "Visible to you and the Happy Tails admin team. Staff never see private messages."
    )


def test_describe_conversation_audience_without_staff(app, admin, household_login, household):
    assert audience(app, admin, household, Feed.CONVERSATION) == (
        "Visible to the client and the admin team. No staff member has access right now."
    )
    assert audience(app, household_login, household, Feed.CONVERSATION) == (
        "Visible to the Happy Tails office."
    )


def test_describe_conversation_audience_names_staff_with_access(
    app, admin, household_login, assigned_staff, preferred_sitter, household
):
    # Names in alphabetical order: Pat Preferred, Sam Sitter.
    assert audience(app, admin, household, Feed.CONVERSATION) == (
        "Visible to the client, the admin team and staff: Pat Preferred and Sam Sitter."
    )
    # A staff member reading it is "you", still in the place of their name.
    assert audience(app, assigned_staff, household, Feed.CONVERSATION) == (
        "Visible to the client, the admin team and staff: Pat Preferred and you."
    )
    assert audience(app, household_login, household, Feed.CONVERSATION) == (
        "Visible to the Happy Tails office, Pat Preferred and Sam Sitter."
    )


def test_describe_conversation_audience_lists_three_staff_with_commas(
    app, admin, make_user, make_service, household
):
    for name in ("Cy Third", "Ann First", "Bo Second"):
        make_service(household, make_user(Role.STAFF, name=name), days_from_now=1)
    assert audience(app, admin, household, Feed.CONVERSATION) == (
        "Visible to the client, the admin team and staff: Ann First, Bo Second and Cy Third."
    )


def test_describe_conversation_audience_leaves_out_staff_who_lost_access(
    app, admin, make_user, make_service, household
):
    make_service(household, make_user(Role.STAFF, name="Cal Cancelled"), days_from_now=1,
                 status=ServiceStatus.CANCELLED)
    make_service(household, make_user(Role.STAFF, name="Olaf Old"), days_from_now=-8)
    make_service(household, make_user(Role.STAFF, name="Dee Deactivated", active=False),
                 days_from_now=1)
    assert audience(app, admin, household, Feed.CONVERSATION) == (
        "Visible to the client and the admin team. No staff member has access right now."
    )


# --- deleting -------------------------------------------------------------------------------------

def may_delete(deleter: str, author: str, feed: Feed) -> bool:
    """The issue's rule: the author their own; admins anything they see; office managers
    any Conversation message. Seeing the feed comes first."""
    sees = SEES_CONVERSATION if feed == Feed.CONVERSATION else SEES_PRIVATE
    if deleter not in sees:
        return False
    return (deleter == author or deleter == "admin"
            or (deleter in ADMIN_TEAM and feed == Feed.CONVERSATION))


# Everyone who can post in each feed writes one message; everyone else tries to delete it.
AUTHORS = [(Feed.CONVERSATION, author) for author in
           ("admin", "office_manager", "staff_scheduled", "staff_preferred", "client")]
AUTHORS += [(Feed.PRIVATE, author) for author in ("admin", "office_manager_private", "client")]


@pytest.mark.parametrize(("feed", "author"), AUTHORS,
                         ids=[f"{feed}-by_{author}" for feed, author in AUTHORS])
def test_delete_follows_author_role_and_feed(app, person, business, household, make_message,
                                             feed, author):
    set_private_messaging(app, business, True)
    message = make_message(household, person(author), "To delete", feed=feed)
    deleters = [*ROLES, ANONYMOUS]
    actual = {
        deleter: ask(app, policy.can_delete_message,
                     None if deleter == ANONYMOUS else person(deleter), message, household)
        for deleter in deleters
    }
    # can_delete (what the feed template asks) and can_delete_message (what the route asks) agree.
    for deleter in deleters:
        user = None if deleter == ANONYMOUS else person(deleter)
        assert ask(app, policy.can_delete, user, household, feed, message.author_id,
                   False) is actual[deleter], deleter
    assert actual == {deleter: may_delete(deleter, author, feed) for deleter in deleters}


def test_delete_refused_for_already_deleted_message(app, admin, household_login, household,
                                                    make_message):
    message = make_message(household, household_login, "Oops")
    update_row(app, type(message), message.id, text=None, deleted_at=utcnow(),
               deleted_by_id=admin.id)
    for user in (admin, household_login):
        assert ask(app, policy.can_delete_message, user, message, household) is False


def test_delete_private_refused_when_setting_off(app, business, admin, household_login,
                                                 office_manager_private, household, make_message):
    own = {user.id: make_message(household, user, "Private", feed=Feed.PRIVATE)
           for user in (admin, household_login, office_manager_private)}
    set_private_messaging(app, business, False)
    for user in (admin, household_login, office_manager_private):
        assert ask(app, policy.can_delete_message, user, own[user.id], household) is False


def test_delete_own_message_refused_after_staff_access_ends(app, assigned_staff, household,
                                                            make_message):
    message = make_message(household, assigned_staff, "On my way")
    assert ask(app, policy.can_delete_message, assigned_staff, message, household) is True
    cancel_every_service(app)
    assert ask(app, policy.can_delete_message, assigned_staff, message, household) is False


# --- role rules -----------------------------------------------------------------------------------

ROLE_RULES = {
    # rule: the roles it allows (on the Rivera household's business, Private Messaging on)
    "is_admin": {"admin", "other_business_admin"},
    "is_admin_team": ADMIN_TEAM | {"other_business_admin"},
    "is_staff": {"staff_scheduled", "staff_preferred", "staff_unrelated"},
    "is_client": {"client", "other_client"},
    "can_manage_clients": ADMIN_TEAM | {"other_business_admin"},
    "can_manage_settings": {"admin", "other_business_admin"},
    "can_access_private_messages": {"admin", "office_manager_private", "other_business_admin"},
    "sees_deletion_details": ADMIN_TEAM | {"other_business_admin"},
    "can_view_my_clients": {"staff_scheduled", "staff_preferred", "staff_unrelated"},
    "sees_client_profile": ADMIN_TEAM | {"staff_scheduled", "staff_preferred", "staff_unrelated",
                                         "other_business_admin"},
    "sees_client_notes": ADMIN_TEAM | {"staff_scheduled", "staff_preferred", "staff_unrelated",
                                       "other_business_admin"},
    "sees_only_own_services": {"staff_scheduled", "staff_preferred", "staff_unrelated"},
}


@pytest.mark.parametrize("role", ROLES)
def test_role_rules_follow_role(app, person, business, role):
    user = person(role)
    set_private_messaging(app, business, True)
    actual = {rule: ask(app, getattr(policy, rule), user) for rule in ROLE_RULES}
    assert actual == {rule: role in allowed for rule, allowed in ROLE_RULES.items()}


def test_role_rules_refuse_anonymous(app):
    # Every rule answers False for the anonymous user, rather than reading attributes it lacks
    # (can_access_private_messages used to raise AttributeError).
    assert {rule: ask(app, getattr(policy, rule), None) for rule in ROLE_RULES} == dict.fromkeys(
        ROLE_RULES, False)


def test_private_access_refused_to_deactivated_office_manager(app, business,
                                                              office_manager_private):
    # The office-manager branch once skipped the is_authenticated check that admins get.
    set_private_messaging(app, business, True)
    update_row(app, User, office_manager_private.id, active=False)
    assert ask(app, policy.can_access_private_messages, office_manager_private) is False


def test_private_access_refused_to_deactivated_admin(app, business, admin):
    set_private_messaging(app, business, True)
    update_row(app, User, admin.id, active=False)
    assert ask(app, policy.can_access_private_messages, admin) is False


@pytest.mark.parametrize("role", ROLES)
def test_only_office_managers_of_the_business_can_be_granted_private_access(app, person,
                                                                            business, role):
    user = person(role)
    granted = ask(app, policy.can_be_granted_private_access, user, business.id)
    assert granted is (role in {"office_manager", "office_manager_private"})


def test_private_access_grantees_are_the_office_managers_by_name(app, business, office_manager,
                                                                 office_manager_private, admin):
    with app.test_request_context():
        names = [user.name for user in policy.private_access_grantees(business.id)]
    assert names == sorted([office_manager.name, office_manager_private.name])


def test_require_refusal_answers_404(app):
    with app.test_request_context():
        policy.require(True)
        with pytest.raises(NotFound):
            policy.require(False)
