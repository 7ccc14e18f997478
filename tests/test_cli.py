"""flask --app wsgi seed-demo | create-user."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import Business, Message, Role, User
from portal.services.accounts import authenticate
from portal.services.demo import PASSWORD

from .helpers import count_rows


def test_seed_demo_creates_one_login_per_role_and_prints_them(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "Demo data created." in result.output
    for role in ("Admin", "Office Manager", "Staff", "Client"):
        assert role in result.output
    assert PASSWORD in result.output
    with app.app_context():
        roles = sorted(user.role.value for user in db.session.scalars(select(User)))
        assert roles == ["admin", "client", "client", "office_manager", "staff", "staff"]
        assert authenticate("admin@happytails.example", PASSWORD) is not None
    assert count_rows(app, Message) > 0


def test_seed_demo_is_idempotent(app, runner):
    runner.invoke(args=["seed-demo"])
    before = (count_rows(app, User), count_rows(app, Message), count_rows(app, Business))
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "already present" in result.output
    assert "admin@happytails.example" in result.output
    assert (count_rows(app, User), count_rows(app, Message), count_rows(app, Business)) == before


def test_demo_logins_work_through_the_login_form(app, runner, client):
    runner.invoke(args=["seed-demo"])
    response = client.submit(
        "/login", {"email": "sam@happytails.example", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/today"
    page = client.get("/my-clients").get_data(as_text=True)
    assert "The Rivera Household" in page and "The Okafor Household" in page


def test_create_user_reads_password_from_stdin(app, runner):
    result = runner.invoke(
        args=["create-user", "--role", "admin", "--email", "Owner@Example.com",
              "--name", "Olive Owner", "--business", "Paws Inc", "--password-stdin"],
        input="a long enough secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created Admin Olive Owner <owner@example.com> in Paws Inc." in result.output
    with app.app_context():
        user = authenticate("owner@example.com", "a long enough secret")
        assert user.role == Role.ADMIN and user.business.name == "Paws Inc"


def test_create_user_prompts_for_password(app, runner, business):
    result = runner.invoke(
        args=["create-user", "--role", "staff", "--email", "w@example.com", "--name", "W"],
        input="walker password\nwalker password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password" in result.output


def test_create_user_refuses_short_password_and_duplicates(app, runner, admin):
    short = runner.invoke(
        args=["create-user", "--role", "admin", "--email", "x@example.com", "--name", "X",
              "--business", "B", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code != 0 and "10 to 256" in short.output
    duplicate = runner.invoke(
        args=["create-user", "--role", "admin", "--email", admin.email, "--name", "Y",
              "--business", "Happy Tails", "--password-stdin"],
        input="another long password\n",
    )
    assert duplicate.exit_code != 0 and "already belongs to a login" in duplicate.output


def test_create_user_needs_business_when_several_exist(app, runner, business, make_business):
    make_business("Second")
    result = runner.invoke(
        args=["create-user", "--role", "admin", "--email", "z@example.com", "--name", "Z",
              "--password-stdin"],
        input="a long enough secret\n",
    )
    assert result.exit_code != 0 and "--business" in result.output


def test_serve_runs_the_worker_in_process(app, runner, monkeypatch):
    from portal import cli

    started, served = [], []
    monkeypatch.setattr(cli.worker, "start_in_process", lambda app: started.append(app))
    # The receiver's own test (test_mail_receiver.py) listens on a free port instead.
    monkeypatch.setattr(cli.receiver, "start_in_process", lambda app: None)
    monkeypatch.setattr(cli, "run_simple", lambda host, port, app, **options: served.append(
        (host, port, options["use_debugger"])))
    result = runner.invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert started == [app] and served == [("127.0.0.1", 5999, False)]
    # Links in emails and texts lead to where it serves, unless PORTAL_BASE_URL said otherwise.
    assert app.config["PORTAL_BASE_URL"] == "http://127.0.0.1:5999"
    runner.invoke(args=["serve", "--host", "::1", "--port", "5999"])
    assert app.config["PORTAL_BASE_URL"] == "http://[::1]:5999"
    app.config.update(PORTAL_BASE_URL="https://portal.example", PORTAL_BASE_URL_GIVEN=True)
    runner.invoke(args=["serve", "--host", "0.0.0.0", "--port", "5101"])
    assert app.config["PORTAL_BASE_URL"] == "https://portal.example"


def test_seed_demo_says_which_sitter_serves_which_client(app, runner):
    output = runner.invoke(args=["seed-demo"]).output
    assert "Sam Sitter: The Okafor Household (preferred sitter); The Rivera Household (Dog walk" \
        in output
    assert "Wendy Walker: The Okafor Household (Overnight stay" in output
    assert "repeats weekly on Mon, Wed, Fri" in output
    assert "Carla Client is The Rivera Household; Dan Dogowner is The Okafor Household" in output


def test_notifications_work_once_delivers_what_is_due(app, runner):
    result = runner.invoke(args=["notifications", "work", "--once"])
    assert result.exit_code == 0 and "Delivered or settled 0 notifications." in result.output
