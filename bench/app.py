"""The portal as benchmarks serve it: the real app, plus a plain "hello" view as the baseline,
on the very same server and configuration (see SERVER in bench/load.py).

Every response says how many SQL statements its request ran (X-Bench-Queries), for the report.
"""

from flask import g, has_request_context
from sqlalchemy import event

from portal import create_app
from portal.extensions import db

app = create_app()

with app.app_context():
    @event.listens_for(db.engine, "before_cursor_execute")
    def count_query(*_args):
        if has_request_context():
            g.bench_queries = g.get("bench_queries", 0) + 1


@app.after_request
def report_queries(response):
    response.headers["X-Bench-Queries"] = str(g.get("bench_queries", 0))
    return response


@app.route("/bench/hello")
def hello():
    return "hello"
