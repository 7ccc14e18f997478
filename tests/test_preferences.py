"""Each person's notification settings and the business defaults."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Business, Channel, User
from portal.notifications.outbox import wants

from .helpers import update_row


def test_person_chooses_channels_and_default_follows_business(app, logged_in, household_login,
                                                              business):
    browser = logged_in(household_login)
    page = browser.get("/notifications").get_data(as_text=True)
    assert "Business default" in page and 'name="sms"' in page
    response = browser.submit("/notifications", {"email": "off", "sms": "on", "push": "default"})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.get(User, household_login.id)
        assert (user.notify_email, user.notify_sms, user.notify_push) == (False, True, None)
        assert not wants(user, Channel.EMAIL) and wants(user, Channel.SMS)
        assert wants(user, Channel.PUSH)  # the business default is on
    update_row(app, Business, business.id, notify_push_default=False)
    with app.app_context():
        assert not wants(db.session.get(User, household_login.id), Channel.PUSH)


def test_person_settings_refuse_unknown_values(app, logged_in, admin):
    logged_in(admin).submit("/notifications", {"email": "sometimes", "sms": "on", "push": "on"})
    with app.app_context():
        assert db.session.get(User, admin.id).notify_sms is None


def test_admin_team_sets_business_defaults_audited(app, logged_in, office_manager, business):
    browser = logged_in(office_manager)
    response = browser.submit(
        "/settings/notifications",
        {"email": "on", "sms": "on", "push": "", "private_email_includes_text": "yes"},
    )
    assert response.status_code == 302
    with app.app_context():
        stored = db.session.get(Business, business.id)
        assert (stored.notify_email_default, stored.notify_sms_default,
                stored.notify_push_default, stored.private_email_includes_text) == (
            True, True, False, True)
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.changed"))
        assert event.actor_id == office_manager.id and "notify_sms_default" in event.details


def test_staff_and_clients_cannot_reach_business_defaults(logged_in, assigned_staff,
                                                          household_login):
    for user in (assigned_staff, household_login):
        assert logged_in(user).get("/settings/notifications").status_code == 404


def test_notifications_link_for_everyone(logged_in, household_login):
    page = logged_in(household_login).get("/", follow_redirects=True).get_data(as_text=True)
    assert 'href="/notifications"' in page
