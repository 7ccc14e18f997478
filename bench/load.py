"""The portal under load, each case side by side with a plain "hello" view on the same server.

Run: .venv/bin/python -m bench.load [--database-url URL] [--tiny] [--seconds 5] [--rounds 3]
                                    [--write bench/RESULTS.md]
Needs wrk (Debian package "wrk"). Builds the database of bench/dataset.py in a temporary folder
(SQLite), or in --database-url (PostgreSQL: its public schema is REPLACED), serves
bench.app with gunicorn (SERVER below), logs in through the login form for real session
cookies, and for each case runs wrk on the hello view, then on the case, for several rounds.
Ratios are case req/s over the hello req/s of the run just before: a noisy machine slows both.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

from bench.report import publish

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# A 2-core machine: one sync worker per core. wrk runs on the same cores, so more workers only
# add switching (measured: 4 workers were no faster than 2). Production may run more per core
# where the load generator is elsewhere.
SERVER = ["--workers", "2", "--worker-class", "sync", "--log-level", "warning"]
WRK = ["--threads", "2", "--connections", "8", "--latency"]
POST_SCRIPT = Path(__file__).with_name("post.lua")
# The posting case measures posting, not the per-person throttle (20 messages a minute), which
# would refuse nearly all of it: its limit is lifted, the check itself still runs.
UNTHROTTLED = {"THROTTLE_MESSAGES_PER_USER": "1000000 per minute"}
# A request carrying it renders its messages as if for the first time (bench.app).
COLD_HEADER = "X-Bench-Cold"


@dataclass
class Case:
    key: str
    name: str
    path: str
    # The least ratio to hello on (SQLite, PostgreSQL); None: reported, judged elsewhere.
    bars: tuple[float, float] | None
    user: str = "admin"
    htmx: bool = False
    post: bool = False
    # Every request renders its messages afresh: the rendered-message cache is emptied first.
    cold: bool = False
    runs: list["Run"] = field(default_factory=list)
    # CPU per request in one process (bench.profile's method), and hello's beside it.
    cpu_ms: float | None = None
    hello_cpu_ms: float | None = None
    bar: float | None = None  # of the engine measured
    queries: int | None = None
    round_trips: int | None = None  # to the database server; SQLite's: its statements
    # The workers' peak resident memory once the case has run (VmHWM only grows: the peak so
    # far, which shows the case that raised it).
    peak_rss_mb: float = 0.0

    @property
    def ratio(self) -> float:
        return statistics.median(run.ratio for run in self.runs)

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)

    def for_engine(self, engine: str) -> "Case":
        if self.bars is not None:
            self.bar = self.bars[engine == "PostgreSQL"]
        return self


@dataclass(frozen=True)
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    ratio: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="small data, one short round")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", help="append the table to this markdown file")
    parser.add_argument("--database-url", help="PostgreSQL to build in (its schema is replaced)")
    parser.add_argument("--prebuilt", metavar="DATABASE_URL",
                        help="a database a previous run's dataset filled: skip building one")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    if args.tiny:
        args.seconds, args.rounds = 1, 1
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as folder:
        database_url = (args.prebuilt or args.database_url
                        or f"sqlite:///{folder}/bench.sqlite3")
        started = time.monotonic()
        data = build_database(database_url, folder, tiny=args.tiny, prebuilt=bool(args.prebuilt))
        built_in = time.monotonic() - started
        environment = {**os.environ, "SECRET_KEY": "bench-only", "PORTAL_ENV": "development",
                       "DATABASE_URL": database_url, "UPLOAD_FOLDER": f"{folder}/uploads",
                       **UNTHROTTLED}
        server = Server(environment)
        try:
            cases = measure(server, data, args, engine_of(database_url))
        finally:
            peak_rss = server.stop()
        profiles = in_process(cases, database_url, requests=20 if args.tiny else 300)
        lines = report(cases, data, database_url, args, built_in, peak_rss) + profiles
    publish(lines, args.write)
    return 0


def build_database(url: str, folder: str, *, tiny: bool, prebuilt: bool = False):
    """Migrates and fills the database in this process; the server only reads it after."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from bench import dataset
    from portal import create_app
    from portal.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-only",
                      "UPLOAD_FOLDER": f"{folder}/uploads"})
    scale = dataset.TINY if tiny else dataset.FULL
    with app.app_context():
        try:
            if prebuilt:
                return dataset.describe(scale)
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as connection:
                    connection.execute(text("DROP SCHEMA public CASCADE"))
                    connection.execute(text("CREATE SCHEMA public"))
            upgrade()
            return dataset.build(scale)
        finally:
            db.session.remove()
            db.engine.dispose()  # no connection outlives the build (nor warns when collected)


class Server:
    """gunicorn serving bench.app: the real portal plus the hello view."""

    def __init__(self, environment: dict):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), *SERVER, "--bind", f"127.0.0.1:{self.port}",
             "bench.app:build_app()"],
            cwd=ROOT, env=environment,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/bench/hello", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.process.kill()
        raise RuntimeError("gunicorn did not start")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def peak_rss_mb(self) -> float:
        """The highest peak resident set size among the workers (VmHWM), in MB."""
        peaks = []
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
        return max(peaks)

    def stop(self) -> float:
        peak = self.peak_rss_mb()
        self.process.terminate()
        self.process.wait(timeout=15)
        return peak


class Browser:
    """A logged-in person: cookies from the real login form, and the page's CSRF token."""

    def __init__(self, base: str, email: str, password: str):
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        login_page = self.get("/login")
        form = urllib.parse.urlencode({"csrf_token": csrf_token_of(login_page), "email": email,
                                       "password": password}).encode()
        self.opener.open(f"{base}/login", data=form)
        self.csrf_token = csrf_token_of(self.get("/"))

    def get(self, path: str) -> str:
        return self.opener.open(self.base + path).read().decode()

    def queries(self, case: Case) -> tuple[int, int]:
        """SQL statements the server ran for one request of the case, and the round trips to
        the database they took (bench.app counts them)."""
        headers = self.headers(case)
        data = b"text=Counting+queries" if case.post else None
        request = urllib.request.Request(self.base + case.path, data=data, headers=headers)
        with self.opener.open(request) as response:
            return (int(response.headers["X-Bench-Queries"]),
                    int(response.headers["X-Bench-Round-Trips"]))

    def headers(self, case: Case | None = None) -> dict[str, str]:
        headers = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in self.jar)}
        if case and (case.htmx or case.post):
            headers["HX-Request"] = "true"
        if case and case.cold:
            headers[COLD_HEADER] = "1"
        if case and case.post:
            headers["X-CSRFToken"] = self.csrf_token
        return headers


def csrf_token_of(page: str) -> str:
    """The CSRF token a page gives htmx (base.html's hx-headers), as a browser would use it."""
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def cases_for(data, admin: Browser) -> list[Case]:
    def feed(client_id: int) -> str:
        return f"/clients/{client_id}/feeds/conversation"

    page = admin.get(feed(data.typical_client_id))
    poll = re.search(r'hx-get="([^"]+/updates\?since=\d+)"', page).group(1)
    shown = [int(n) for n in re.findall(r'id="message-(\d+)"', page)]
    return [
        Case("page", "Conversation feed page (latest 50, full layout)",
             feed(data.typical_client_id), (0.20, 0.15)),
        Case("cold", "feed page, its messages rendered for the first time (cold)",
             feed(data.typical_client_id), (0.12, 0.09), cold=True),
        Case("big", f"feed page, client with {data.big_conversation_messages:,} messages",
             feed(data.big_client_id), None),
        Case("small", "feed page, client with 20 messages", feed(data.small_client_id), None),
        Case("earlier", "Load earlier messages, deep in the largest feed",
             f"{feed(data.big_client_id)}/earlier?before={data.deep_before_id}", (0.25, 0.20),
             htmx=True),
        Case("poll", '"nothing new" live-feed poll',
             f"{poll}&after={max(shown)}&oldest={min(shown)}", (0.70, 0.60), htmx=True),
        Case("post", "post a text message (htmx)", f"{feed(data.post_client_id)}/messages",
             (0.15, 0.12), post=True),
        Case("floor", "reference, not a page: layout and the latest 50 articles kept whole",
             f"/bench/floor/{data.typical_client_id}", None),
        Case("center", f"Message Center, {data.scale.clients:,} clients", "/messages",
             (0.15, 0.12)),
        Case("my_clients", "staff My Clients", "/my-clients", (0.20, 0.15), user="staff"),
    ]


def measure(server: Server, data, args, engine: str) -> list[Case]:
    from bench import dataset

    people = {
        "admin": Browser(server.base, dataset.ADMIN_EMAIL, dataset.PASSWORD),
        "staff": Browser(server.base, dataset.STAFF_EMAIL, dataset.PASSWORD),
    }
    cases = [case.for_engine(engine) for case in cases_for(data, people["admin"])]
    if args.only:
        cases = [case for case in cases if args.only in case.name]
    for case in cases:
        case.queries, case.round_trips = people[case.user].queries(case)
    hello = f"{server.base}/bench/hello"
    for _ in range(args.rounds):
        for case in cases:
            person = people[case.user]
            baseline = wrk(hello, args.seconds, person.headers(case))
            run = wrk(server.base + case.path, args.seconds, person.headers(case), post=case.post)
            # A server too busy to answer hello at all in a short run counts as no ratio.
            ratio = run.rate / baseline.rate if baseline.rate else 0.0
            case.runs.append(Run(run.rate, run.p50_ms, run.p99_ms, ratio))
            case.peak_rss_mb = max(case.peak_rss_mb, server.peak_rss_mb())
    return cases


def wrk(url: str, seconds: int, headers: dict[str, str], *, post: bool = False) -> Run:
    command = ["wrk", *WRK, "--duration", f"{seconds}s"]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    if post:
        command += ["--script", str(POST_SCRIPT)]
    output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    if _only_timeouts(output):
        # A stall of the whole machine (seconds without a CPU for the server) times out a few
        # requests of an otherwise clean run: measure again once rather than lose the bench.
        print(f"timeouts under load at {url}, measuring again:\n{output}", file=sys.stderr)
        output = subprocess.run([*command, url], check=True, capture_output=True,
                                text=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"errors under load at {url}:\n{output}")
    return Run(
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_latency_ms(output, "50%"),
        p99_ms=_latency_ms(output, "99%"),
        ratio=1.0,
    )


def _only_timeouts(output: str) -> bool:
    """Whether wrk's only errors were timeouts (no refused connection, no error status)."""
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    return bool(errors) and "Non-2xx" not in output and errors.group(4) != "0" and \
        errors.group(1, 2, 3) == ("0", "0", "0")


def _latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def engine_of(database_url: str) -> str:
    return "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"


def report(cases: list[Case], data, database_url, args, built_in, peak_rss) -> list[str]:
    engine = engine_of(database_url)
    lines = [
        f"## The portal under load: {engine}",
        "",
        f"{data.scale.clients:,} clients, {data.scale.staff} staff, "
        f"{data.scale.messages:,} messages (built in {built_in:.0f} s). gunicorn "
        f"{' '.join(SERVER[:4])}; wrk {' '.join(WRK[:4])}; {args.seconds} s runs, "
        f"{args.rounds} rounds, each case right after a hello run on the same server; medians.",
        "",
        "| case | requests/s | p50 | p99 | ratio to hello | bar | CPU in one process (hello) | "
        "SQL queries | round trips | peak RSS per worker |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        lines.append(
            f"| {case.name} | {case.rate:.0f} | {_median(case, 'p50_ms')} | "
            f"{_median(case, 'p99_ms')} | {case.ratio:.2f} | {_bar(case)} | {_cpu(case)} | "
            f"{case.queries} | {case.round_trips} | {case.peak_rss_mb:.0f} MB |"
        )
    lines += ["", *_summary({case.key: case for case in cases}, peak_rss), "", *READING, ""]
    return lines


READING = """\
How to read it. The hello view is Flask's own floor on this server (routing, the signed session
cookie, the security headers): about 0.4 ms of CPU. Every case pays that, then its own work, so
a ratio of 0.20 leaves a page about 1.6 ms of its own. Rendering fifty messages through Jinja
alone takes about 0.7 ms; the feed page also loads the person and the client, counts unread
messages for its tabs and the navigation, lists the client's staff, services and logins, and
renders the composer. What is left is spread over that work (the profiles below), with no
single cause dominating. The reference row (bench/app.py's floor, not a portal page) is the
least a logged-in feed page can cost: the person, the client, the layout and the latest
messages' articles kept whole, nothing else; a feed page's bar leaves it what separates the
two for unread counts, tabs, roster, sidebar and composer.
The flat-page bar compares a page of fifty messages with a page of twenty: the queries are the
same keyset lookups whatever the feed's length, and the difference is the thirty messages more
to render. Posting on SQLite also waits for its one writer at a time.""".splitlines()


def _summary(by_key: dict[str, Case], peak_rss: float) -> list[str]:
    """The bars that compare cases with each other, and the server's memory."""
    lines = []
    big, small, center = by_key.get("big"), by_key.get("small"), by_key.get("center")
    if big and small:
        flat = big.rate / small.rate
        lines.append(
            f"- Flat feed page: {big.rate:.0f} req/s for the largest feed vs {small.rate:.0f} "
            f"for 20 messages: ratio {flat:.2f} (bar ≥ 0.90: {_verdict(flat >= 0.9)})."
        )
        counts = {big.queries, small.queries} | ({center.queries} if center else set())
        lines.append(
            f"- SQL queries per request: feed page {big.queries} (largest feed) and "
            f"{small.queries} (20 messages)"
            + (f", Message Center {center.queries}" if center else "")
            + f" (bar: the same whatever the data size, ≤ 8: {_verdict(max(counts) <= 8)})."
        )
    lines.append(f"- Peak RSS per gunicorn worker: {peak_rss:.0f} MB "
                 f"(bar ≤ 150 MB: {_verdict(peak_rss <= 150)}).")
    return lines


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def in_process(cases: list[Case], database_url: str, *, requests: int) -> list[str]:
    """Each case's CPU per request in this process (the Flask test client, no server, no wrk
    on the same cores), interleaved with hello's; then, for each bar missed, where the time
    goes."""
    from bench import profile

    app = profile.bench_app(database_url)
    try:
        return _in_process(app, cases, requests)
    finally:
        from portal.extensions import db

        with app.app_context():
            db.engine.dispose()


def _in_process(app, cases: list[Case], requests: int) -> list[str]:
    from bench import dataset, profile

    visitors = {"admin": profile.Visitor(app, dataset.ADMIN_EMAIL),
                "staff": profile.Visitor(app, dataset.STAFF_EMAIL)}
    calls = {}
    for case in cases:
        visitor = visitors[case.user]
        calls[case.key] = visitor.request(case.path, htmx=case.htmx, post=case.post,
                                          cold=case.cold)
        case.hello_cpu_ms, case.cpu_ms = profile.interleaved_cpu_ms(
            visitor.hello, calls[case.key], requests
        )
    missed = [case for case in cases if case.bar is not None and case.ratio < case.bar]
    if not missed:
        return []
    lines = ["### Where the time goes in the cases below their bar", ""]
    for case in missed:
        lines += [
            f"**{case.name}** (ratio {case.ratio:.2f}, bar {case.bar:.2f}): in one process "
            f"{case.cpu_ms:.2f} ms of CPU per request, against {case.hello_cpu_ms:.2f} ms for "
            "hello.",
            "",
            *profile.breakdown(profile.profile(calls[case.key], requests)),
            "",
        ]
    return lines


def _cpu(case: Case) -> str:
    if case.cpu_ms is None:
        return "n/a"
    return f"{case.cpu_ms:.2f} ms ({case.hello_cpu_ms:.2f} ms)"


def _median(case: Case, attribute: str) -> str:
    return f"{statistics.median(getattr(run, attribute) for run in case.runs):.1f} ms"


def _bar(case: Case) -> str:
    if case.bar is None:
        return "see below"
    return f"≥ {case.bar:.2f} {_verdict(case.ratio >= case.bar)}"


if __name__ == "__main__":
    sys.exit(main())
