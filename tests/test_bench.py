"""The benchmarks run, so they cannot rot; they assert nothing about speed."""

import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from bench import import_csv, load, photo_feed, profile, thumbnails

from .helpers import POSTGRES_URL


def test_thumbnail_benchmark_reports_a_table(tmp_path, capsys):
    report = tmp_path / "RESULTS.md"
    thumbnails.main(["--rounds", "1", "--write", str(report)])
    table = report.read_text()
    assert "thumbnail with the uploads' shrink() (JPEG draft mode)" in table
    assert "whole upload" in table and "| speed-up" not in table


def test_photo_feed_benchmark_compares_no_store_with_revalidation(tmp_path):
    report = tmp_path / "RESULTS.md"
    photo_feed.main(["--photos", "3", "--rounds", "1", "--write", str(report)])
    table = report.read_text()
    assert "| `no-store` (now): sent whole every time | 3 x 200 |" in table
    assert "| `private, no-cache` + ETag (before): revalidated | 3 x 304 |" in table


def test_load_benchmark_runs_every_case(tmp_path):
    """bench.load on a tiny database: gunicorn, real logins, wrk on every case, the report.
    With PostgreSQL under test, its own database beside the test one (the bench replaces it)."""
    database = ["--database-url", _sibling_database(POSTGRES_URL, "bench")] if POSTGRES_URL else []
    report = tmp_path / "RESULTS.md"
    assert load.main(["--tiny", *database, "--write", str(report)]) == 0
    table = report.read_text()
    for case in ("Conversation feed page", "feed page, client with 20", "Load earlier messages",
                 '"nothing new" live-feed poll', "post a text message", "Message Center",
                 "staff My Clients", "reference, not a page"):
        assert f"| {case}" in table
    assert "PostgreSQL" in table if POSTGRES_URL else "SQLite" in table
    assert "Flat feed page" in table and "Peak RSS per gunicorn worker" in table


def test_import_benchmark_imports_clients_and_pets_then_nothing(tmp_path):
    """bench.import_csv on 20 clients, through the pages; with PostgreSQL under test, in its
    own database beside the test one (the bench replaces it)."""
    database = (["--database-url", _sibling_database(POSTGRES_URL, "import_bench")]
                if POSTGRES_URL else [])
    report = tmp_path / "RESULTS.md"
    assert import_csv.main(["--clients", "20", *database, "--write", str(report)]) == 0
    table = report.read_text()
    assert "| 20 clients, new |" in table and "Imported clients.csv: 20 new clients" in table
    assert "Nothing to change: every row of clients.csv matches" in table
    assert "PostgreSQL" in table if POSTGRES_URL else "SQLite" in table


SITE_PACKAGES = "lib/python3.11/site-packages/flask/app.py"


@pytest.mark.parametrize(("where", "own"), [
    ("portal/settings/routes.py", True),
    ("templates/settings/_audit_sentences.html", True),
    (f".venv/{SITE_PACKAGES}", False),
    (f"venv/{SITE_PACKAGES}", False),  # `python -m venv venv` beside the package
    ("bench/app.py", False),
])
def test_profile_counts_the_package_and_templates_as_project_code(where, own):
    assert profile.is_project_code(str(profile.ROOT / where)) is own


def test_profile_counts_no_file_and_frozen_modules_as_other_code():
    assert not profile.is_project_code(None)
    assert not profile.is_project_code("<frozen importlib._bootstrap>")


def test_profile_never_counts_a_sibling_checkout_as_project_code():
    sibling = f"{profile.ROOT}-old/portal/settings/routes.py"
    assert not profile.is_project_code(sibling)


def test_profile_never_counts_the_virtualenv_as_project_code(monkeypatch):
    assert not profile.is_project_code(str(Path(sys.prefix) / SITE_PACKAGES))
    inside_the_package = profile.ROOT / "portal" / "env"  # made where it should not be
    monkeypatch.setattr(profile, "VIRTUALENV", inside_the_package)
    assert not profile.is_project_code(str(inside_the_package / SITE_PACKAGES))
    assert profile.is_project_code(str(profile.ROOT / "portal" / "settings" / "routes.py"))


def _sibling_database(url: str, suffix: str) -> str:
    sibling = make_url(url)
    sibling = sibling.set(database=f"{sibling.database}_{suffix}")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": sibling.database}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{sibling.database}"'))
    engine.dispose()
    return sibling.render_as_string(hide_password=False)


WRK_TIMEOUTS = """  Latency Distribution
     50%    4.10ms
  13105 requests in 5.00s, 40.12MB read
  Socket errors: connect 0, read 0, write 0, timeout 8
Requests/sec:   2621.00
"""


def test_a_run_with_only_timeouts_is_measured_again_and_other_errors_are_not():
    assert load._only_timeouts(WRK_TIMEOUTS)
    assert not load._only_timeouts(WRK_TIMEOUTS.replace("connect 0", "connect 3"))
    assert not load._only_timeouts(WRK_TIMEOUTS + "  Non-2xx or 3xx responses: 2\n")
    assert not load._only_timeouts(WRK_TIMEOUTS.replace("timeout 8", "timeout 0"))
    assert not load._only_timeouts("Requests/sec:   2621.00\n")
