"""Visit reports in a real browser, on a 390 px phone: the sitter starts the visit from Today,
checks the checklist, attaches two photos and ends the visit with the report; the household,
logged in elsewhere, sees the card arrive in its open feed and replies, and the sitter is told.
Sending with no signal keeps the report in the page, and sending again makes one report."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.models import Message, Notification, VisitReport

from ..helpers import png_bytes
from .helpers import WAIT, wait_for_htmx

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def walk(make_service, household, assigned_staff):
    """Sam's walk with the Riveras, begun five minutes ago."""
    return make_service(household, assigned_staff, days_from_now=-5 / (24 * 60))


def photos(tmp_path) -> list[str]:
    paths = []
    for name, colour in (("couch.png", "orange"), ("park.png", "green")):
        path = tmp_path / name
        path.write_bytes(png_bytes((160, 120), colour))
        paths.append(str(path))
    return paths


def fill_report(page, tmp_path, note: str) -> None:
    form = page.locator("form.report-form")
    for item, answer in (("Walked", "Yes"), ("Fed", "n/a"), ("Water", "Yes"), ("Poo", "Yes")):
        form.get_by_role("radiogroup", name=item).get_by_text(answer, exact=True).click()
    form.get_by_label("Note for the client").fill(note)
    form.get_by_label("Photos", exact=True).set_input_files(photos(tmp_path))


def test_a_sitter_reports_on_a_phone_and_the_household_sees_it_live_and_replies(
        app, log_in, assigned_staff, household, household_login, walk, screenshot_dir,
        quick_polls, tmp_path):
    household_page = log_in(household_login, **PHONE)
    expect(household_page.locator("#feed")).to_be_visible()
    wait_for_htmx(household_page)

    page = log_in(assigned_staff, **PHONE)
    page.goto("/today")
    today = page.get_by_role("region", name=re.compile("^Today"))
    today.get_by_role("button", name="Start visit for Dog walk at The Rivera Household").click()
    expect(page.get_by_role("heading", name="Dog walk")).to_be_visible()
    expect(page.get_by_role("button", name="End visit", exact=True)).to_be_visible()
    fill_report(page, tmp_path, "Biscuit pulled towards every squirrel, then napped.")
    page.screenshot(path=screenshot_dir / "visit-report-form-phone.png", full_page=True)
    page.get_by_role("button", name="End visit and send report").click()
    page.wait_for_url("**/feeds/conversation#message-*", timeout=WAIT * 2)
    card = page.locator("article.message .report-card")
    expect(card).to_contain_text("arrived")
    expect(card).to_contain_text("left")
    expect(page.locator("article.message .message-images img")).to_have_count(2)
    page.screenshot(path=screenshot_dir / "visit-report-sent-staff-phone.png", full_page=True)

    # The household's open feed receives the card as any new message, photos and all.
    arrived = household_page.locator("article.message", has=household_page.locator(
        ".report-card"))
    expect(arrived).to_be_visible(timeout=WAIT * 2)
    expect(arrived).to_contain_text("Walked")
    expect(arrived).to_contain_text("Biscuit pulled towards every squirrel")
    expect(arrived.locator(".message-images img")).to_have_count(2)
    arrived.scroll_into_view_if_needed()
    household_page.screenshot(path=screenshot_dir / "visit-report-client-phone.png",
                              full_page=True)

    # Reply on the card: the answer is linked to the visit's report.
    arrived.get_by_role("link", name="Reply to this visit report").click()
    composer = household_page.locator("#feed form.composer")
    expect(composer).to_contain_text("Replying to the visit report")
    wait_for_htmx(household_page)
    composer.locator("#message-text").fill("He looks so happy, thank you!")
    composer.get_by_role("button", name="Send", exact=True).click()
    expect(household_page.locator("article.message", has_text="He looks so happy")).to_be_visible(
        timeout=WAIT)
    with app.app_context():
        reply = db.session.scalar(select(Message).where(
            Message.text == "He looks so happy, thank you!"))
        told = set(db.session.scalars(select(Notification.recipient_id)
                                      .where(Notification.message_id == reply.id)))
        [report] = db.session.scalars(select(VisitReport))
    assert assigned_staff.id in told
    assert reply.reply_to_id == report.message_id
    assert report.checklist[0] == ["Walked", "yes"]
    # The sitter's open feed shows the answer too.
    expect(page.locator("article.message", has_text="He looks so happy")).to_be_visible(
        timeout=WAIT * 2)


def test_no_signal_keeps_the_report_and_sending_again_makes_one(
        app, log_in, assigned_staff, household, walk, screenshot_dir, tmp_path):
    page = log_in(assigned_staff, **PHONE)
    page.goto(f"/visits/{walk.id}")
    fill_report(page, tmp_path, "Kept through a dead zone.")
    page.route("**/report", lambda route: route.abort("internetdisconnected"))
    page.get_by_role("button", name="Send report").click()
    said = page.locator(".report-said")
    expect(said).to_contain_text("Not sent: no connection")
    expect(page.get_by_label("Note for the client")).to_have_value("Kept through a dead zone.")
    assert page.get_by_label("Photos", exact=True).evaluate("input => input.files.length") == 2
    page.screenshot(path=screenshot_dir / "visit-report-no-signal-phone.png", full_page=True)

    # Signal again; the first send had in fact arrived: the second is the same report.
    page.unroute("**/report")
    with app.app_context():
        assert db.session.scalar(select(VisitReport)) is None
    page.get_by_role("button", name="Send report").click()
    page.wait_for_url("**/feeds/conversation#message-*", timeout=WAIT * 2)
    page.go_back()
    page.get_by_role("button", name="Send report").click()
    page.wait_for_url("**/feeds/conversation#message-*", timeout=WAIT * 2)
    with app.app_context():
        assert len(db.session.scalars(select(Message)).all()) == 1


def test_a_refused_photo_says_why_and_keeps_the_report(app, log_in, assigned_staff, household,
                                                       walk, tmp_path):
    page = log_in(assigned_staff, **PHONE)
    page.goto(f"/visits/{walk.id}")
    fake = tmp_path / "couch.png"
    fake.write_bytes(b"not a picture at all")
    form = page.locator("form.report-form")
    form.get_by_label("Note for the client").fill("Kept when refused.")
    form.get_by_label("Photos", exact=True).set_input_files(str(fake))
    page.get_by_role("button", name="Send report").click()
    said = page.locator(".report-said")
    expect(said).to_contain_text("Not sent: ")
    expect(said).to_contain_text("Your note, checklist and photos are still here")
    expect(form.get_by_label("Note for the client")).to_have_value("Kept when refused.")
    with app.app_context():
        assert db.session.scalar(select(VisitReport)) is None
