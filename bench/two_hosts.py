"""Two web hosts against one, on PostgreSQL: the layout of README.md's "Several hosts" (nginx
with TLS in front of gunicorn servers, a notification worker, PostgreSQL, Redis and a bucket;
tests/layout.py starts it as the README says), measured through the proxy with wrk: posting a
message (htmx) and the Conversation feed page.

Run: .venv/bin/python -m bench.two_hosts [--seconds 10] [--rounds 2] [--write bench/RESULTS.md]
Needs wrk, nginx, redis-server and PostgreSQL's server programs (Debian's packages). On one
machine the "hosts" share its cores: what two hosts add here is what a second process adds on
the same CPUs, not what a second machine would.
"""

import argparse
import os
import shutil
import statistics
import sys

from bench.load import POST_SCRIPT, UNTHROTTLED, Run, wrk
from bench.machine import cpu_model
from bench.report import publish
from tests.helpers import SmtpServer, free_port
from tests.layout import Browser, Layout, layout_missing, seed
from tests.object_store import S3Server

HOUSEHOLDS = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    if missing := layout_missing() or (None if shutil.which("wrk") else "wrk is not installed"):
        raise SystemExit(missing)
    results = {hosts: measure(hosts, args) for hosts in (1, 2)}
    publish(report(results, args), args.write)
    return 0


def measure(hosts: int, args) -> dict[str, list[Run]]:
    smtp, s3 = SmtpServer(free_port()), S3Server()
    smtp.start()
    s3.start()
    layout = Layout(smtp.port, s3.settings(s3.new_bucket()), web_servers=hosts, workers=1,
                    extra={**UNTHROTTLED, "NOTIFICATION_DELAY_SECONDS": "0"})
    try:
        layout.start()
        households = sorted(seed(layout, HOUSEHOLDS))
        layout.serve()
        admin = Browser(layout)
        feed = f"{layout.base_url}/clients/{households[0]}/feeds/conversation"
        for n in range(60):  # a feed with messages to show
            admin.post_message(households[0], f"Walk report {n}")
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value
                                       in admin.session.cookies.items()),
                   "Referer": layout.base_url + "/"}
        posting = {**headers, "HX-Request": "true", "X-CSRFToken": admin.csrf}
        runs: dict[str, list[Run]] = {"post": [], "page": []}
        for _ in range(args.rounds):
            runs["post"].append(wrk(f"{feed}/messages", args.seconds, posting, post=True))
            runs["page"].append(wrk(feed, args.seconds, headers))
        return runs
    finally:
        layout.stop()
        smtp.stop()
        s3.stop()


def report(results: dict[int, dict[str, list[Run]]], args) -> list[str]:
    def rate(hosts: int, case: str) -> float:
        return statistics.median(run.rate for run in results[hosts][case])

    def p99(hosts: int, case: str) -> float:
        return statistics.median(run.p99_ms for run in results[hosts][case])

    lines = [
        "## Two web hosts against one: PostgreSQL", "",
        f"{os.cpu_count()} cores ({cpu_model()}). The layout of README.md's \"Several "
        "hosts\" on this one machine: nginx (TLS) in front of one or two gunicorn servers of "
        "2 sync workers each, one notification worker, PostgreSQL, Redis and a bucket (moto's "
        "S3 server), all sharing its cores with wrk (`--threads 2 --connections 8`; posting "
        f"with {POST_SCRIPT.name}). Median of {args.rounds} runs of {args.seconds} s each, "
        "through the proxy. Run: `python -m bench.two_hosts --write bench/RESULTS.md`.", "",
        "| case | 1 host req/s | 2 hosts req/s | 2 / 1 | 1 host p99 ms | 2 hosts p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {"post": "post a text message (htmx), notifications written with it",
             "page": "Conversation feed page (latest 50)"}
    for case, name in names.items():
        lines.append(f"| {name} | {rate(1, case):.0f} | {rate(2, case):.0f} | "
                     f"{rate(2, case) / rate(1, case):.2f} | {p99(1, case):.0f} | "
                     f"{p99(2, case):.0f} |")
    lines += ["", "On one machine a second host adds processes, not CPU: twice the web workers "
              "share the same cores with nginx, PostgreSQL and wrk, and the extra switching is "
              "what the ratio shows. What it does show: two servers behind the proxy answer "
              "every request right (wrk counts any error), with nothing to share between them "
              "but the database, Redis and the bucket. On machines of their own, each host "
              "brings its own cores, until PostgreSQL is the limit.", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
