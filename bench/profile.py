"""Where one request's time goes: runs it many times in this process under pyinstrument.

Run: .venv/bin/python -m bench.profile DATABASE_URL PATH [--user EMAIL] [--htmx] [--post] [--cold]
     [--requests 500]
DATABASE_URL is a database filled by bench/dataset.py (bench.load builds one in a temporary
folder; build one to keep with `python -m bench.profile URL --build`). Prints the time per
request of the path and of the hello view, then the profile of the path.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from flask import Flask
from pyinstrument import Profiler, processors

from bench import dataset
from bench.load import COLD_HEADER, UNTHROTTLED, csrf_token_of

ROOT = Path(__file__).resolve().parent.parent
# The project's own code, as the breakdown counts it: the package and its templates. Not the
# virtualenv, wherever it was made (beside the package, or even inside it), nor the benchmarks.
PROJECT_SOURCES = (ROOT / "portal", ROOT / "templates")
VIRTUALENV = Path(sys.prefix)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("path", nargs="?", default="/bench/hello")
    parser.add_argument("--user", default=dataset.ADMIN_EMAIL)
    parser.add_argument("--htmx", action="store_true")
    parser.add_argument("--post", action="store_true")
    parser.add_argument("--cold", action="store_true",
                        help="render the messages afresh on every request")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--sql", action="store_true", help="time each SQL statement")
    parser.add_argument("--no-profile", action="store_true", help="only the timings")
    parser.add_argument("--build", action="store_true", help="fill the database first")
    args = parser.parse_args(argv)
    app = bench_app(args.database_url)
    if args.build:
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
            print(dataset.build())
        return
    visitor = Visitor(app, args.user)
    request = visitor.request(args.path, htmx=args.htmx, post=args.post, cold=args.cold)
    hello_ms, path_ms = interleaved_cpu_ms(visitor.hello, request, args.requests)
    print(f"hello: {hello_ms:.2f} ms CPU")
    print(f"{args.path}: {path_ms:.2f} ms CPU ({path_ms / hello_ms:.1f}x hello)")
    if args.sql:
        _time_statements(app, request)
    if not args.no_profile:
        print(profile(request, args.requests).output_text(unicode=True, color=False))


class Visitor:
    """A person logged in through the login form of an in-process app (Flask's test client)."""

    def __init__(self, app: Flask, email: str):
        self.client = app.test_client()
        token = csrf_token_of(self.client.get("/login").text)
        self.client.post("/login", data={"csrf_token": token, "email": email,
                                         "password": dataset.PASSWORD})
        self.csrf_token = csrf_token_of(self.client.get("/", follow_redirects=True).text)

    def hello(self):
        return self.client.get("/bench/hello")

    def request(self, path: str, *, htmx: bool = False, post: bool = False, cold: bool = False):
        """A function making the request, checked once to succeed. `cold`: its messages are
        rendered afresh each time (bench.app empties the rendered-message cache first)."""
        headers = {"X-CSRFToken": self.csrf_token}
        if htmx or post:
            headers["HX-Request"] = "true"
        if cold:
            headers[COLD_HEADER] = "1"

        def call():
            if post:
                return self.client.post(path, data={"text": "Profiling"}, headers=headers)
            return self.client.get(path, headers=headers)

        status = call().status_code
        if status not in (200, 204):
            raise RuntimeError(f"{path} answered {status}")
        return call


def cpu_ms(call, requests: int) -> float:
    """CPU time per call: other processes on the machine count less than in wall time."""
    started = time.process_time()
    for _ in range(requests):
        call()
    return (time.process_time() - started) / requests * 1000


def interleaved_cpu_ms(first, second, requests: int, batch: int = 20) -> tuple[float, float]:
    """The median CPU time per call of each, over batches taking turns: on a shared machine
    whatever slows one batch slows its neighbour alike, so their ratio holds."""
    first(), second()  # warm up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(1, requests // batch)):
        for spent, call in zip(times, (first, second), strict=True):
            spent.append(cpu_ms(call, batch))
    return statistics.median(times[0]), statistics.median(times[1])


def profile(call, requests: int) -> Profiler:
    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(requests):
            call()
    return profiler


def breakdown(profiler: Profiler, *, depth: int = 3, least: float = 0.04) -> list[str]:
    """The request's time by the project's own functions and templates, outermost first (to
    `depth` levels of them), as markdown list lines; what is below `least` of it is left out."""
    root = processors.aggregate_repeated_calls(profiler.last_session.root_frame(), options={})
    total = root.time
    lines: list[str] = []

    def walk(frame, level: int) -> None:
        for child in sorted(frame.children, key=lambda child: -child.time):
            own = is_project_code(child.file_path)
            if own and child.time / total >= least and level < depth:
                where = f"{Path(child.file_path).relative_to(ROOT)}:{child.line_no}"
                lines.append(f"{'  ' * level}- {child.time / total:.0%} `{child.function}` "
                             f"({where})")
                walk(child, level + 1)
            elif not own or level < depth:
                walk(child, level)

    walk(root, 0)
    return lines


def is_project_code(path: str | None) -> bool:
    """Whether a frame's file is the project's own (whole folders compared, not the start of
    the path: a sibling checkout named <repo>-old is not the project)."""
    if not path:
        return False
    file = Path(path)
    in_sources = any(file.is_relative_to(folder) for folder in PROJECT_SOURCES)
    return in_sources and not file.is_relative_to(VIRTUALENV)


def bench_app(database_url: str) -> Flask:
    """bench.app, as gunicorn serves it, on the given database."""
    from bench.app import build_app

    return build_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench-only",
                      **UNTHROTTLED})


def _time_statements(app, request, rounds: int = 50) -> None:
    """The mean time of each statement one request runs, slowest first."""
    from sqlalchemy import event

    from portal.extensions import db

    times: dict[str, list[float]] = {}
    # By cursor: statements run straight on the driver have no execution context.
    started: dict[int, float] = {}

    def before(connection, cursor, statement, parameters, context, executemany):
        started[id(cursor)] = time.perf_counter()

    def after(connection, cursor, statement, parameters, context, executemany):
        spent = time.perf_counter() - started.pop(id(cursor))
        times.setdefault(statement, []).append(spent)

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



if __name__ == "__main__":
    main()
