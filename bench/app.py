"""The portal as benchmarks serve it: the real app, plus a plain "hello" view as the baseline,
on the very same server and configuration (gunicorn "bench.app:build_app()", see bench/load.py).

Every response says how many SQL statements its request ran (X-Bench-Queries) and how many
round trips to the database they took (X-Bench-Round-Trips), for the report. A request
carrying COLD_HEADER renders its messages as if for the first time.
"""

from flask import Flask, current_app, g, has_request_context, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import event

from bench.load import COLD_HEADER
from portal import create_app
from portal.extensions import db
from portal.feed_component import query, rendered
from portal.loaders import client_of_business
from portal.models import Feed

# The floor page's content: the client's name and the articles, inside the portal's layout.
FLOOR_TEMPLATE = (
    '{% extends "base.html" %}{% block title %}{{ client.name }}{% endblock %}'
    '{% block content %}<h1>{{ client.name }}</h1><section class="feed">{{ articles }}'
    '</section>{% endblock %}'
)


def build_app(config: dict | None = None) -> Flask:
    app = create_app(config)
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", _count_query)
    if engine.dialect.driver == "psycopg":
        _count_psycopg_round_trips(engine)
    app.before_request(_forget_rendered_messages)
    app.after_request(_report_queries)
    app.add_url_rule("/bench/hello", "bench_hello", hello)
    app.add_url_rule("/bench/floor/<int:client_id>", "bench_floor", floor)
    return app


def hello():
    return "hello"


@login_required
def floor(client_id: int):
    """Not a portal page: the least any logged-in feed page costs. It loads the person and the
    client as every page does and renders the layout around the latest messages' articles,
    kept whole by this process after its first request; nothing else (no unread counts, tabs,
    roster, sidebar or composer). The feed page's bar, set beside this, is what is left for
    those."""
    client = client_of_business(current_user, client_id)
    g.unread_total = 0  # the navigation's badge: real pages count it with another statement
    kept = current_app.extensions.setdefault("bench_floor", {})
    key = (current_user.id, client_id)
    if key not in kept:
        page = query.load_page(client, Feed.CONVERSATION, current_user,
                               limit=current_app.config["FEED_PAGE_SIZE"])
        kept[key] = rendered.render_messages(page.items)
    if "template" not in kept:
        kept["template"] = current_app.jinja_env.from_string(FLOOR_TEMPLATE)
    return render_template(kept["template"], client=client, articles=kept[key])


def _forget_rendered_messages() -> None:
    if request.headers.get(COLD_HEADER):
        rendered.clear(current_app)


def _count_query(_connection, cursor, *_args) -> None:
    if has_request_context():
        g.bench_queries = g.get("bench_queries", 0) + 1
        g.bench_round_trips = g.get("bench_round_trips", 0) + 1 + _begins(cursor.connection)
        g.bench_connection = cursor.connection


def _count_psycopg_round_trips(engine) -> None:
    """What psycopg sends besides the statements, each a round trip of its own: the BEGIN
    before a transaction's first statement (_begins), its COMMIT or ROLLBACK (none when no
    transaction is open; the one still open when the response is made ends after it, at the
    session's teardown: _report_queries counts it), and the pool's ping at checkout. (SQLite
    runs in the process: there its round trips are its statements.)"""

    def ends_transaction(connection) -> None:
        if not connection.invalidated and _in_transaction(connection.connection.dbapi_connection):
            _add_round_trips(1)

    event.listen(engine, "commit", ends_transaction)
    event.listen(engine, "rollback", ends_transaction)
    if engine.pool._pre_ping:
        event.listen(engine, "engine_connect", lambda _connection: _add_round_trips(1))


def _begins(dbapi_connection) -> int:
    """1 when psycopg sends a BEGIN before this statement (not for SQLite: 0)."""
    info = getattr(dbapi_connection, "info", None)
    if info is None or dbapi_connection.autocommit:
        return 0
    return 0 if _in_transaction(dbapi_connection) else 1


def _in_transaction(dbapi_connection) -> bool:
    from psycopg.pq import TransactionStatus

    return dbapi_connection.info.transaction_status != TransactionStatus.IDLE


def _add_round_trips(count: int) -> None:
    if has_request_context():
        g.bench_round_trips = g.get("bench_round_trips", 0) + count


def _report_queries(response):
    connection = g.get("bench_connection")
    if getattr(connection, "info", None) is not None and _in_transaction(connection):
        _add_round_trips(1)  # the ROLLBACK at the session's teardown
    response.headers["X-Bench-Queries"] = str(g.get("bench_queries", 0))
    response.headers["X-Bench-Round-Trips"] = str(g.get("bench_round_trips", 0))
    return response
