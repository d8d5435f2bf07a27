"""The fleet benchmark's long workload is repeated, and each client's median run is what it reports."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_fleet
import report


def test_each_client_reports_its_median_run_and_names_every_run() -> None:
    """Catches a report of one run (the first, the last, the best) where the median was promised."""
    runs = [
        {"mode": "ours", "run": index, "cpu_us_per_job_minute": cpu} for index, cpu in enumerate([900.0, 700.0, 1100.0])
    ]
    row = bench_fleet.median_run(runs)
    assert (row["run"], row["cpu_us_per_job_minute_runs"]) == (0, [900.0, 700.0, 1100.0])
    assert report._long_runs([row]).endswith(
        "median of 3 runs, the clients alternating (µs CPU per watched job per minute in each run: "
        "GradientIndexingJobTrigger: 900, 700, 1,100)."
    )
