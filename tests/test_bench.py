"""The benchmarks run, so they cannot rot; they assert nothing about speed."""

from bench import thumbnails


def test_thumbnail_benchmark_reports_a_table(tmp_path, capsys):
    report = tmp_path / "RESULTS.md"
    thumbnails.main(["--rounds", "1", "--write", str(report)])
    table = report.read_text()
    assert "thumbnail with JPEG draft mode (our path)" in table
    assert "whole upload" in table and "| speed-up" not in table
