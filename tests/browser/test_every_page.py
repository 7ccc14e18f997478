"""Every page, as each role reaches it, on a phone (390 x 844) and a desktop (1280 x 900), in the
light and the dark theme: nothing wider than the screen, no serious or critical axe-core
violation, and a screenshot of each in test-output/pages/ to look at (not with
PORTAL_TEST_SWEEP_SCREENSHOTS=0: CI, where nobody looks, saves a fifth of the sweep's time).

The pages are the demo business's (what `make run` starts with) plus what the demo lacks: Private
Messaging on with a private message, a photo and a file, an unmatched reply, a pending import.
test_every_page_is_swept fails for a new page until it is listed here.
"""

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.inbound import queue
from portal.models import (
    Attachment,
    Business,
    Client,
    DeliveryStatus,
    Feed,
    InboundChannel,
    MessageApproval,
    Notification,
    Pet,
    Role,
    ScheduledService,
    User,
    utcnow,
)
from portal.services import (
    clients,
    demo,
    imports,
    messages,
    saved_replies,
    send_later,
    visit_reports,
)
from portal.services.uploads import Upload, prepare

from ..helpers import grant_private_access, png_bytes, set_private_messaging
from .helpers import WAIT

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
THEMES = ("light", "dark")
# What fails a page: axe-core's two highest impacts (moderate and minor are reported, not failed).
FAILING_IMPACTS = {"serious", "critical"}
SCREENSHOTS = os.environ.get("PORTAL_TEST_SWEEP_SCREENSHOTS") != "0"


@dataclass(frozen=True)
class Demo:
    """Ids of the demo business's records that pages are about."""

    carla_home: int
    biscuit: int
    walk: int
    photo_message: int
    photo_token: str
    reply: int
    import_token: str
    scheduled: int
    saved_reply: int
    held: int
    visit: int
    report_message: int


# endpoint -> the page's URL for the demo (None: the endpoint has no page of its own, why beside)
PAGES: dict[str, Callable[[Demo], str]] = {
    "auth.login": lambda d: "/login",
    "auth.forgot_password": lambda d: "/password/forgot",
    "auth.reset_password": lambda d: "/password/reset/not-a-token",
    "auth.accept_invitation": lambda d: "/invitation/not-a-token",
    "auth.home": lambda d: "/",
    "auth.change_password": lambda d: "/account/password",
    "preferences.mine": lambda d: "/notifications",
    "preferences.business_defaults": lambda d: "/settings/notifications",
    "center.index": lambda d: "/messages",
    "clients.index": lambda d: "/clients",
    "clients.new": lambda d: "/clients/new",
    "clients.profile": lambda d: f"/clients/{d.carla_home}",
    "feeds.show": lambda d: f"/clients/{d.carla_home}/feeds/private",
    "feeds.earlier": lambda d: f"/clients/{d.carla_home}/feeds/conversation/earlier?before="
                               f"{d.photo_message}",
    "clients.edit": lambda d: f"/clients/{d.carla_home}/edit",
    "clients.archive": lambda d: f"/clients/{d.carla_home}/archive",
    "clients.new_login": lambda d: f"/clients/{d.carla_home}/logins/new",
    "clients.edit_household": lambda d: f"/clients/{d.carla_home}/household",
    "clients.edit_pet": lambda d: f"/clients/{d.carla_home}/pets/{d.biscuit}/edit",
    "clients.edit_pet_care": lambda d: f"/clients/{d.carla_home}/household/pets/{d.biscuit}",
    "clients.edit_service": lambda d: f"/services/{d.walk}/edit",
    "clients.schedule_service": lambda d: f"/clients/{d.carla_home}/services",
    "clients.import_records": lambda d: "/clients/import",
    "clients.import_preview": lambda d: f"/clients/import/{d.import_token}",
    "clients.week_schedule": lambda d: "/schedule",
    "files.view": lambda d: f"/files/{d.photo_token}/view",
    "messages.confirm_delete": lambda d: f"/messages/{d.photo_message}/delete",
    "messages.show": lambda d: f"/messages/{d.photo_message}",
    "messages.edit_scheduled": lambda d: f"/scheduled/{d.scheduled}/edit",
    "messages.reject_held": lambda d: f"/scheduled/{d.held}/reject",
    "visits.show": lambda d: f"/visits/{d.visit}",
    "visits.past": lambda d: f"/clients/{d.carla_home}/visits",
    "visits.thread": lambda d: f"/reports/{d.report_message}",
    "visits.edit_note": lambda d: f"/messages/{d.report_message}/report-note",
    "messages.saved_replies_picker": lambda d: f"/clients/{d.carla_home}/feeds/conversation/"
                                               "saved-replies",
    "messages.saved_reply": lambda d: f"/clients/{d.carla_home}/feeds/conversation/"
                                      f"saved-replies/{d.saved_reply}",
    "settings.saved_replies": lambda d: "/settings/saved-replies",
    "settings.new_saved_reply": lambda d: "/settings/saved-replies/new",
    "settings.edit_saved_reply": lambda d: f"/settings/saved-replies/{d.saved_reply}",
    "replies.index": lambda d: "/settings/unmatched-replies",
    "replies.show": lambda d: f"/settings/unmatched-replies/{d.reply}",
    "replies.discard": lambda d: f"/settings/unmatched-replies/{d.reply}/discard",
    "settings.index": lambda d: "/settings",
    "settings.portal_settings": lambda d: "/settings/client/portal",
    "settings.business_profile": lambda d: "/settings/business",
    "settings.permissions": lambda d: "/settings/permissions",
    "settings.audit_log": lambda d: "/settings/audit-log",
    "settings.client_history": lambda d: f"/settings/clients/{d.carla_home}/history",
    "staff.index": lambda d: "/staff",
    "staff.new": lambda d: "/staff/new",
    "staff.my_clients": lambda d: "/my-clients",
    "staff.today": lambda d: "/today",
}
# GET endpoints that are not pages: files, feeds for machines, and pieces htmx swaps into one.
NOT_PAGES = {
    "static": "the stylesheet and scripts",
    "install.manifest": "the web app manifest (tests/test_install.py)",
    "install.icon": "an icon",
    "install.favicon": "an icon",
    "install.business_icon": "an icon",
    "install.logo": "the business's logo",
    "push.service_worker": "the service worker's script",
    "staff.calendar_feed": "a calendar feed for calendar apps",
    "clients.import_template": "a CSV file",
    "clients.pet_photo": "a photo",
    "files.download": "a file",
    "files.thumbnail": "a photo",
    "files.waiting_file": "a file of a message not sent yet",
    "files.waiting_thumbnail": "a photo of a message not sent yet",
    "center.badge": "the navigation's unread badge, polled",
    "feeds.updates": "an open feed's poll",
    "messages.delivery": "a message's delivery line, polled",
}
# Pages for people not logged in: the roles that are see them as everyone does.
LOGGED_OUT_PAGES = {"auth.login", "auth.forgot_password", "auth.reset_password",
                    "auth.accept_invitation"}
# The demo's logins (demo.LOGINS), each seen with the pages they can open; None: logged out.
ROLES = {
    "anonymous": None,
    "admin": "admin@happytails.example",
    "office_manager": "office@happytails.example",
    "staff": "sam@happytails.example",
    "client": "carla@example.com",
}


def test_every_page_is_swept(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert endpoints - PAGES.keys() - NOT_PAGES.keys() == set()
    assert PAGES.keys() & NOT_PAGES.keys() == set()
    assert (PAGES.keys() | NOT_PAGES.keys()) - endpoints == set()


def dress_demo(app) -> Demo:
    """The demo business, with Private Messaging on (and an office manager allowed it), a private
    message, a photo and a file, a reply nobody could be matched to, a pending import and a
    notification that failed."""
    with app.app_context():
        demo.seed()
        business = db.session.scalar(select(Business).where(Business.name == demo.BUSINESS_NAME))
        set_private_messaging(app, business, True)
        office = db.session.scalar(select(User).where(User.role == Role.OFFICE_MANAGER))
        grant_private_access(app, office)
        admin = db.session.scalar(select(User).where(User.role == Role.ADMIN))
        carla = db.session.scalar(select(User).where(User.email == ROLES["client"]))
        home = db.session.get(Client, carla.client_id)
        limits = {"max_bytes": 10**7, "max_pixels": 10**7}
        files = [prepare(Upload("biscuit.png", png_bytes((640, 480))), **limits),
                 prepare(Upload("vet-notes.pdf", b"%PDF-1.4 walk report"), **limits)]
        posted = messages.post_message(admin, home, Feed.CONVERSATION,
                                       "Biscuit after his walk, and the vet's notes.", files)
        messages.post_message(carla, home, Feed.PRIVATE, "Can we talk about the invoice?")
        kept_reply = saved_replies.save(
            admin, None, "Vaccination reminder",
            "Hi {first_name}! {pet_names} is due for shots; next visit {next_visit_date}.",
            [prepare(Upload("clinic-hours.pdf", b"%PDF-1.4 hours"), **limits)], set())
        later = send_later.schedule(admin, home, Feed.CONVERSATION,
                                    "Reminder: Biscuit's vaccination is due next week.",
                                    utcnow() + timedelta(days=2))
        # Sam's walk with Carla's household under way, and its report with a photo (before
        # his messages need approval, below).
        sam = db.session.scalar(select(User).where(User.email == ROLES["staff"]))
        walk = clients.schedule_service(
            None, home, sam, title="Afternoon walk", starts_at=utcnow() - timedelta(minutes=40),
            ends_at=utcnow() + timedelta(minutes=20))
        visit_reports.start(sam, walk)
        reported = visit_reports.file(
            sam, walk, {"Walked": "yes", "Fed": "na", "Water": "yes", "Pee": "yes"},
            "Biscuit pulled towards every squirrel, then napped on the couch.",
            [prepare(Upload("couch.png", png_bytes((320, 240), "orange")), **limits)])
        # Sam's messages wait for approval: one does, with a photo (Awaiting approval).
        sam.message_approval = MessageApproval.ALWAYS
        held = send_later.hold(sam, home, Feed.CONVERSATION,
                               "Biscuit found a puddle. Towel-dried before I left!",
                               [prepare(Upload("puddle.png", png_bytes((320, 240))), **limits)])
        reply = queue.record_unmatched(
            channel=InboundChannel.EMAIL, dedupe_key="d" * 64, business_id=business.id,
            reason="The reply address is not one the portal gave out", raw=b"raw email",
            sender="neighbour@example.org", sender_name="A Neighbour", subject="Biscuit",
            text="I think I saw Biscuit at the park without a leash?",
        )
        template = imports.template_csv("clients").encode("utf-8")
        pending = imports.keep(business, admin, "clients", "clients.csv",
                               imports.read_upload(template, "clients.csv"))
        # A notification that could not be delivered, for Failed deliveries.
        db.session.execute(update(Notification).where(Notification.id == db.session.scalar(
            select(func.min(Notification.id)))).values(
            status=DeliveryStatus.FAILED, attempts=5,
            last_error="550 5.1.1 <carla@example.com>: Recipient address rejected: mailbox "
                       "unavailable (the receiving server's answer, kept whole)"))
        db.session.commit()
        return Demo(
            carla_home=home.id,
            biscuit=db.session.scalar(select(Pet.id).where(Pet.client_id == home.id,
                                                           Pet.name == "Biscuit")),
            walk=db.session.scalar(select(ScheduledService.id).where(
                ScheduledService.client_id == home.id).order_by(ScheduledService.starts_at)),
            photo_message=posted.id,
            photo_token=db.session.scalar(select(Attachment.token).where(
                Attachment.message_id == posted.id).order_by(Attachment.position)),
            reply=reply.id,
            import_token=pending.token,
            scheduled=later.id,
            saved_reply=kept_reply.id,
            held=held.id,
            visit=walk.id,
            report_message=reported.message_id,
        )


def log_in_as(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(demo.PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(lambda url: urlsplit(url).path != "/login", timeout=WAIT)


# The first elements reaching past the screen's right edge, named as tag#id.class.
WIDEST = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ')[0] : ''))"""

# Boxes whose content is wider than they are and scrolls sideways (a table on a phone): cut off
# at first sight. Text shortened with an ellipsis is not counted: it says it is shortened.
SIDEWAYS = """() => [...document.querySelectorAll('body *')].filter(e => {
    const style = getComputedStyle(e);
    return ['auto', 'scroll'].includes(style.overflowX) && e.scrollWidth > e.clientWidth + 1;
  }).slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ')[0] : ''))"""


def problems_of(page: Page) -> list[str]:
    """What is wrong with the page as shown now: wider than the screen, or axe's findings."""
    problems = []
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        wide = page.evaluate(WIDEST)
        problems.append(f"{overflow} px wider than the screen ({', '.join(wide)})")
    scrolling = page.evaluate(SIDEWAYS)
    if scrolling:
        problems.append(f"scrolls sideways inside the page: {', '.join(scrolling)}")
    violations = page.evaluate("""async () => {
        const results = await axe.run(document, {resultTypes: ['violations']});
        return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    for violation in violations:
        if violation["impact"] in FAILING_IMPACTS:
            problems.append(f"axe {violation['impact']} {violation['id']}: {violation['help']} "
                            f"{json.dumps(violation['targets'])}")
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_a_role_fits_and_passes_axe(app, browser, live_server, screenshot_dir,
                                                  role):
    data = dress_demo(app)
    folder = screenshot_dir / "pages"
    folder.mkdir(exist_ok=True)
    for earlier in folder.glob(f"{role}-*.png"):
        earlier.unlink()
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(WAIT)
    # Injected by the browser itself, before the page's own scripts: the page's CSP stays on.
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    try:
        if ROLES[role]:
            log_in_as(page, ROLES[role])
        found, seen, swept = [], set(), set()
        for endpoint, url_of in PAGES.items():
            if ROLES[role] and endpoint in LOGGED_OUT_PAGES:
                continue
            response = page.goto(url_of(data))
            path = urlsplit(page.url).path
            # Not this role's page (a 404, or the login page instead), or one already swept by
            # another address (the home page is the role's first page).
            sent_to_login = path == "/login" and endpoint != "auth.login"
            if response.status == 404 or sent_to_login or page.url in seen:
                continue
            assert response.ok, f"{role} {endpoint}: {response.status}"
            seen.add(page.url)
            swept.add(endpoint)
            expect(page.locator("main")).to_be_visible()
            for size, viewport in SIZES.items():
                page.set_viewport_size(viewport)
                for theme in THEMES:
                    page.emulate_media(color_scheme=theme)
                    name = re.sub(r"\W+", "-", f"{role}-{endpoint}-{size}-{theme}")
                    for state, problems in states_of(page, endpoint, size, folder / name):
                        found.extend(f"{role} {endpoint} ({path}) {size} {theme}{state}: {problem}"
                                     for problem in problems)
        assert not found, "\n".join(found)
        # Exactly the pages this role reaches: a page missing here is one that broke for it.
        assert swept == REACHED[role], (sorted(swept - REACHED[role]),
                                        sorted(REACHED[role] - swept))
    finally:
        context.close()


def states_of(page: Page, endpoint: str, size: str, shot: Path):
    """(state, problems) of the page as it opens, then of what a tap unfolds on a phone: the
    menu on the role's first page, the household at a glance on a client's page. Each state
    leaves a screenshot (unless SCREENSHOTS is off)."""
    yield "", problems_of(page)
    if SCREENSHOTS:
        page.screenshot(path=f"{shot}.png", full_page=True)
    if size != "phone":
        return
    unfolds = {"auth.home": "#menu-button", "clients.profile": "details.key-facts > summary"}
    if endpoint not in unfolds or not page.locator(unfolds[endpoint]).is_visible():
        return
    page.locator(unfolds[endpoint]).click()
    yield " (unfolded)", problems_of(page)
    if SCREENSHOTS:
        page.screenshot(path=f"{shot}-unfolded.png", full_page=True)
    page.locator(unfolds[endpoint]).click()


# The pages each role reaches, by endpoint (those reaching the same address as an earlier one,
# such as the clients list that is the admin team's home page, are swept once).
ADMIN_TEAM_PAGES = {
    "auth.home", "auth.change_password", "center.index", "clients.archive", "clients.edit",
    "clients.edit_pet", "clients.edit_service", "clients.import_records", "clients.new",
    "clients.new_login", "clients.profile", "clients.schedule_service", "clients.week_schedule",
    "feeds.earlier", "feeds.show", "files.view", "messages.confirm_delete", "messages.show",
    "messages.edit_scheduled", "messages.saved_replies_picker", "messages.saved_reply",
    "messages.reject_held", "visits.show", "visits.edit_note", "visits.past", "visits.thread",
    "settings.saved_replies",
    "settings.new_saved_reply", "settings.edit_saved_reply",
    "preferences.business_defaults", "preferences.mine", "replies.discard", "replies.index",
    "replies.show", "settings.client_history", "staff.index", "staff.new",
}
REACHED = {
    "anonymous": LOGGED_OUT_PAGES,
    "admin": ADMIN_TEAM_PAGES | {
        "clients.import_preview",  # the admin's own upload
        "settings.index", "settings.portal_settings", "settings.business_profile",
        "settings.permissions", "settings.audit_log",
    },
    "office_manager": ADMIN_TEAM_PAGES,
    "staff": {"auth.home", "auth.change_password", "center.index", "clients.profile",
              "feeds.earlier", "files.view", "messages.show", "preferences.mine",
              "staff.my_clients", "messages.saved_replies_picker", "messages.saved_reply",
              "visits.show", "visits.thread"},
    "client": {"auth.home", "auth.change_password", "clients.edit_household",
               "clients.edit_pet_care", "feeds.earlier", "feeds.show", "files.view",
               "messages.show", "preferences.mine", "visits.past", "visits.thread"},
}
