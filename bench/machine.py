"""The head of bench/RESULTS.md: what the figures were measured on."""

import os
import platform
import sqlite3
import subprocess
from pathlib import Path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).split("\n")[0].strip()


def main() -> None:
    print("# Benchmark results\n")
    print("Written by `make bench`. Ratios travel between machines; absolute numbers do not.\n")
    print(f"- Machine: {os.cpu_count()} cores ({cpu_model()}), {memory_gb():.0f} GB, "
          f"{platform.system()} {platform.release()} {platform.machine()}")
    print(f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{wrk_version()}\n")


if __name__ == "__main__":
    main()
