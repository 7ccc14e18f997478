"""The portal: create_app builds the Flask application."""

from pathlib import Path

from flask import Flask, g, render_template
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import config, storage, throttle
from portal.extensions import csrf, db, htmx, login_manager, mail, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config.DEFAULTS)
    if test_config is None:
        app.config.from_mapping(config.from_environment(Path(app.instance_path)))
        config.refuse_unsafe_production(app.config)
    else:
        app.config.from_mapping(test_config)

    _trust_proxies(app)
    _read_ids_safely(app)
    _plan_statements_once(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_error_pages(app)
    _register_template_helpers(app)

    from portal import cli

    cli.register(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind a reverse proxy the client's address (for the throttles) and scheme come from
    its X-Forwarded-* headers, believed only from as many proxies as configured."""
    if hops := app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def _plan_statements_once(app: Flask) -> None:
    """PostgreSQL plans a prepared statement once, for any values. Its default plans it again
    for each run's values while that looks no dearer, and the portal's statements (joins on ids,
    the unread counts' subqueries) took longer to plan than to run: the Message Center's list
    3.7 ms planned and 2.8 ms run, each time, where the one generic plan ran in 1.3 ms all told.
    (psycopg prepares what a connection runs five times; the rest is planned as usual.)"""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    options["connect_args"] = {"options": "-c plan_cache_mode=force_generic_plan",
                               **options.get("connect_args", {})}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _read_ids_safely(app: Flask) -> None:
    """Every `<int:...>` in a route is an id: numbers beyond the id columns answer 404."""
    from portal.urls import IdConverter

    app.url_map.converters["int"] = IdConverter


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    mail.init_app(app)
    htmx.init_app(app)
    storage.init_app(app)
    throttle.init_app(app)
    login_manager.init_app(app)
    # A new session key at every login is our protection; Flask-Login's own would log users
    # out when their IP changes (phones hop networks all day).
    login_manager.session_protection = None

    from portal.auth.routes import unauthorized
    from portal.fragments import add_vary_header
    from portal.headers import add_security_headers
    from portal.services.accounts import load_session_user

    login_manager.user_loader(load_session_user)
    login_manager.unauthorized_handler(unauthorized)
    app.after_request(add_vary_header)
    app.after_request(add_security_headers)


def _register_blueprints(app: Flask) -> None:
    from portal.accounts import bp as accounts_bp
    from portal.auth import bp as auth_bp
    from portal.center import bp as center_bp
    from portal.clients import bp as clients_bp
    from portal.feeds import bp as feeds_bp
    from portal.files import bp as files_bp
    from portal.install import bp as install_bp
    from portal.messages import bp as messages_bp
    from portal.preferences import bp as preferences_bp
    from portal.push import bp as push_bp
    from portal.replies import bp as replies_bp
    from portal.settings import bp as settings_bp
    from portal.sms import bp as sms_bp
    from portal.staff import bp as staff_bp
    from portal.visits import bp as visits_bp

    blueprints = (
        auth_bp, clients_bp, feeds_bp, files_bp, messages_bp, preferences_bp, settings_bp,
        staff_bp, push_bp, center_bp, accounts_bp, sms_bp, replies_bp, install_bp, visits_bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)


def _register_error_pages(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    from portal.install.brand import PORTAL_NAME, Brand

    def error_page(status: int, title: str, text: str):
        def handler(error):
            g.unread_total = None  # no badge: the database may be what failed
            g.brand = Brand(PORTAL_NAME, None)  # nor the business of a logged-out visitor
            return render_template("error.html", status=status, title=title, text=text), status

        return handler

    app.register_error_handler(
        404,
        # The same words whether the page never existed, was deleted or is not this person's
        # to see (a sitter after the visit, a manager whose access was removed): no hint which.
        error_page(
            404, "This page is not available",
            "It is not available to you, or it no longer exists.",
        ),
    )
    app.register_error_handler(
        405, error_page(405, "Not allowed", "That action cannot be done this way.")
    )
    app.register_error_handler(
        413,
        error_page(413, "Too large to send", "The files together are over the size limit. "
                   "Send fewer or smaller files at a time."),
    )
    app.register_error_handler(
        CSRFError,
        error_page(400, "Please try again", "The form was out of date. Reload the page and retry."),
    )
    app.register_error_handler(
        500, error_page(500, "Something went wrong", "We have been told. Please try again.")
    )
    app.register_error_handler(DBAPIError, _database_unavailable)
    files_unavailable = error_page(
        503, "Please try again", "The portal could not reach its file store just now, so "
        "nothing was saved. Try again in a minute.")

    def storage_unavailable(error):
        db.session.rollback()
        return files_unavailable(error)

    app.register_error_handler(storage.StorageUnavailable, storage_unavailable)


def _database_unavailable(error: DBAPIError):
    """The database went away (a restart, an idle connection closed) or does not take
    connections yet: the request fails with a 503, and the next one connects afresh (SQLAlchemy
    has already discarded the pool's connections). Any other database error stays a 500."""
    # Not connected: no statement was sent, and the driver's error is not one the server sent
    # (those carry an SQLSTATE, a failed COMMIT's among them).
    connecting = (isinstance(error, OperationalError) and error.statement is None
                  and getattr(error.orig, "sqlstate", None) is None)
    if not (error.connection_invalidated or connecting):
        raise error
    db.session.rollback()
    # The page shows nobody as logged in: Flask-Login would otherwise load the user for the
    # template (its context processor), from the database that just failed.
    g._login_user = login_manager.anonymous_user()
    return render_template("unavailable.html"), 503


def _register_template_helpers(app: Flask) -> None:
    from portal import bidi, clock, hours, phones, policy, unread
    from portal.feed_component.rendered import render_messages
    from portal.models import DeliveryStatus, Feed, Role
    from portal.services import form_keys
    from portal.urls import kept_url_for

    app.jinja_env.globals.update(
        policy=policy, Feed=Feed, Role=Role, DeliveryStatus=DeliveryStatus,
        unread_badge=unread.badge, nav_unread=unread.nav_total, new_form_key=form_keys.new_key,
        held_badge=unread.held_badge, nav_held=unread.nav_held,
        rendered_messages=render_messages, url_for=kept_url_for, zone_label=clock.zone_label,
        away_notice=hours.closed_notice, opening_label=hours.opening_label,
    )
    app.jinja_env.filters.update(
        local_datetime=clock.viewer_datetime, local_time=clock.viewer_time,
        visit_span=clock.viewer_visit_span, phone=phones.readable,
        business_time=clock.business_day_and_time,
    )
    app.jinja_env.finalize = bidi.finalize
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record) -> None:
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
