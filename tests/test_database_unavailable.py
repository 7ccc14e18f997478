"""A database that does not take connections (restarting, or gone) fails each request with a
503 "Please try again", never a 500: the error page itself reads nothing from it."""

from portal.extensions import db

from .helpers import free_port


def test_a_logged_in_page_answers_503_while_the_database_refuses_connections(
        make_app, admin, admin_browser):
    cookie = admin_browser.get_cookie("session")
    assert cookie is not None
    down = make_app(SQLALCHEMY_DATABASE_URI=(
        f"postgresql+psycopg://portal@127.0.0.1:{free_port()}/portal"))
    browser = down.test_client()
    browser.set_cookie("session", cookie.value)
    for url in ("/clients", "/login"):
        answer = browser.get(url)
        assert answer.status_code == 503, url
        page = answer.get_data(as_text=True)
        assert "Please try again" in page and "lost its connection" in page
        assert admin.name not in page  # nobody is shown as logged in
    with down.app_context():
        db.engine.dispose()
