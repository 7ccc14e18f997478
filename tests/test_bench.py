"""The benchmarks run, so they cannot rot; they assert nothing about speed."""

from sqlalchemy import create_engine, make_url, text

from bench import load, photo_feed, thumbnails

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
                 "staff My Clients"):
        assert f"| {case}" in table
    assert "PostgreSQL" in table if POSTGRES_URL else "SQLite" in table
    assert "Flat feed page" in table and "Peak RSS per gunicorn worker" in table


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
