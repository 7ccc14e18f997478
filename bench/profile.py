"""Where one request's time goes: runs it many times in this process under pyinstrument.

Run: .venv/bin/python -m bench.profile DATABASE_URL PATH [--user EMAIL] [--htmx] [--post]
     [--requests 500]
DATABASE_URL is a database filled by bench/dataset.py (bench.load builds one in a temporary
folder; build one to keep with `python -m bench.profile URL --build`). Prints the time per
request of the path and of the hello view, then the profile of the path.
"""

import argparse
import os
import re
import time

from pyinstrument import Profiler

from bench import dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("path", nargs="?", default="/bench/hello")
    parser.add_argument("--user", default=dataset.ADMIN_EMAIL)
    parser.add_argument("--htmx", action="store_true")
    parser.add_argument("--post", action="store_true")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--sql", action="store_true", help="time each SQL statement")
    parser.add_argument("--no-profile", action="store_true", help="only the timings")
    parser.add_argument("--build", action="store_true", help="fill the database first")
    args = parser.parse_args(argv)
    app = _app(args.database_url)
    if args.build:
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
            print(dataset.build())
        return
    client = app.test_client()
    token = _token(client.get("/login").text)
    client.post("/login", data={"csrf_token": token, "email": args.user,
                                "password": dataset.PASSWORD})
    headers = {"X-CSRFToken": _token(client.get("/", follow_redirects=True).text)}
    if args.htmx or args.post:
        headers["HX-Request"] = "true"

    def request():
        if args.post:
            return client.post(args.path, data={"text": "Profiling"}, headers=headers)
        return client.get(args.path, headers=headers)

    assert request().status_code in (200, 204), request().status_code
    for label, call in (("hello", lambda: client.get("/bench/hello")), (args.path, request)):
        started = time.process_time()  # CPU time: other processes on the machine count less
        for _ in range(args.requests):
            call()
        print(f"{label}: {(time.process_time() - started) / args.requests * 1000:.2f} ms CPU")
    if args.sql:
        _time_statements(app, request)
    if args.no_profile:
        return
    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(args.requests):
            request()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def _time_statements(app, request, rounds: int = 50) -> None:
    """The mean time of each statement one request runs, slowest first."""
    from sqlalchemy import event

    from portal.extensions import db

    times: dict[str, list[float]] = {}

    def before(connection, cursor, statement, parameters, context, executemany):
        context.bench_started = time.perf_counter()

    def after(connection, cursor, statement, parameters, context, executemany):
        times.setdefault(statement, []).append(time.perf_counter() - context.bench_started)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    for _ in range(rounds):
        request()
    event.remove(engine, "before_cursor_execute", before)
    event.remove(engine, "after_cursor_execute", after)
    for statement, spent in sorted(times.items(), key=lambda item: -sum(item[1])):
        text = " ".join(statement.split())
        print(f"{sum(spent) / rounds * 1000:7.3f} ms/request  {text[:150]}")


def _app(database_url: str):
    """bench.app, as gunicorn serves it, on the given database."""
    os.environ.update(DATABASE_URL=database_url, SECRET_KEY="bench-only", RATELIMIT_ENABLED="false")
    from bench.app import app

    return app


def _token(page: str) -> str:
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


if __name__ == "__main__":
    main()
