"""Throughput of an open feed's "nothing new" poll against a plain hello view, same server.

Run: .venv/bin/python -m bench.poll [--seconds 10] [--rounds 3] [--write bench/RESULTS.md]
Needs wrk (Debian package "wrk"). Builds a small SQLite database in a temporary folder, serves
bench.app with gunicorn (2 sync workers, as on a 2-core machine), logs in as the demo admin
with a real session cookie, and alternates baseline and poll runs; reports medians.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from bench.report import publish

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_database(folder: Path, environment: dict) -> None:
    flask = [str(BIN / "flask"), "--app", "bench.app"]
    subprocess.run([*flask, "db", "upgrade"], check=True, env=environment, cwd=ROOT,
                   capture_output=True)
    subprocess.run([*flask, "seed-demo"], check=True, env=environment, cwd=ROOT,
                   capture_output=True)


def start_server(port: int, environment: dict) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--worker-class", "sync",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "bench.app:app"],
        cwd=ROOT, env=environment,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/hello", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def session_cookie(base: str) -> tuple[str, str]:
    """Logs in through the form like a browser; returns the Cookie header and the poll URL."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_page = opener.open(f"{base}/login").read().decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', login_page).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "email": "admin@happytails.example",
                                   "password": "happy-tails-demo"}).encode()
    opener.open(f"{base}/login", data=form)
    page = opener.open(f"{base}/clients/1").read().decode()
    poll = re.search(r'hx-get="(/clients/1/feeds/conversation/updates\?since=\d+)"', page).group(1)
    newest = max(int(n) for n in re.findall(r'id="message-(\d+)"', page))
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return cookie, f"{poll}&after={newest}&oldest={newest}"


def wrk(url: str, seconds: int, headers: dict[str, str]) -> float:
    command = ["wrk", "--threads", "2", "--connections", "8", "--duration", f"{seconds}s"]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"errors under load:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as folder:
        environment = {**os.environ, "SECRET_KEY": "bench-only", "PORTAL_ENV": "development",
                       "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3"}
        prepare_database(Path(folder), environment)
        port = free_port()
        server = start_server(port, environment)
        try:
            base = f"http://127.0.0.1:{port}"
            cookie, poll = session_cookie(base)
            headers = {"Cookie": cookie, "HX-Request": "true"}
            hello, polls = [], []
            for _ in range(args.rounds):
                hello.append(wrk(f"{base}/bench/hello", args.seconds, headers))
                polls.append(wrk(f"{base}{poll}", args.seconds, headers))
        finally:
            server.terminate()
            server.wait(timeout=10)
    baseline, poll_rate = statistics.median(hello), statistics.median(polls)
    lines = [
        '## "Nothing new" poll of an open feed',
        "",
        f"gunicorn, 2 sync workers; wrk, 2 threads, 8 connections, {args.seconds} s runs, "
        f"{args.rounds} alternating rounds, medians; SQLite; logged in as an admin.",
        "",
        "| case | requests/s | ratio to hello |",
        "|---|---|---|",
        f"| plain hello view (baseline, same server) | {baseline:.0f} | 1.00 |",
        f"| nothing-new poll (204) | {poll_rate:.0f} | {poll_rate / baseline:.2f} |",
        "",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
