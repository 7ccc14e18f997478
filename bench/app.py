"""The portal as benchmarks serve it: the real app, plus a plain "hello" view as the baseline,
on the very same server and configuration (gunicorn "bench.app:build_app()", see bench/load.py).

Every response says how many SQL statements its request ran (X-Bench-Queries), for the report.
"""

from flask import Flask, g, has_request_context
from sqlalchemy import event

from portal import create_app
from portal.extensions import db


def build_app(config: dict | None = None) -> Flask:
    app = create_app(config)
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", _count_query)
    app.after_request(_report_queries)
    app.add_url_rule("/bench/hello", "bench_hello", hello)
    return app


def hello():
    return "hello"


def _count_query(*_args) -> None:
    if has_request_context():
        g.bench_queries = g.get("bench_queries", 0) + 1


def _report_queries(response):
    response.headers["X-Bench-Queries"] = str(g.get("bench_queries", 0))
    return response
