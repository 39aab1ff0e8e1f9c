"""Benchmark: the overhead of `jobplane runjob --local` for a no-op job, against a bare Python start.

Reports medians of several runs on SQLite: from the start of the command to run() entered, and the
total; the bare interpreter start in the same script is the baseline the ratios refer to.

    .venv/bin/python bench/runjob_overhead.py [--runs 11]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOOP_JOB = """
import os
import time

from jobplane import Job, register_jobs


class Noop(Job):
    class Meta:
        has_sensitive_variables = False

    def run(self):
        with open(os.environ["BENCH_ENTERED_FILE"], "w") as handle:
            handle.write(repr(time.time()))


register_jobs(Noop)
"""


def _timed(
    command: list[str], env: dict[str, str], cwd: Path, entered_file: Path | None
) -> tuple[float, float]:
    if entered_file is not None and entered_file.exists():
        entered_file.unlink()
    start_wall = time.time()
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    total = time.perf_counter() - start
    entered = float(entered_file.read_text()) - start_wall if entered_file is not None else float("nan")
    return entered, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobplane-bench-") as tmp:
        work = Path(tmp)
        (work / "jobs").mkdir()
        (work / "jobs" / "bench_noop.py").write_text(NOOP_JOB)
        entered_file = work / "entered"
        env = {
            **os.environ,
            "JOBPLANE_JOBS_ROOT": str(work / "jobs"),
            "JOBPLANE_DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
            "BENCH_ENTERED_FILE": str(entered_file),
        }
        runjob = [sys.executable, "-m", "jobplane.cli", "runjob", "--local", "--quiet", "bench_noop.Noop"]
        baseline_cmd = [sys.executable, "-c", "pass"]

        _, cold_total = _timed(runjob, env, work, entered_file)  # creates the schema
        baseline = [_timed(baseline_cmd, env, work, None)[1] for _ in range(args.runs)]
        runs = [_timed(runjob, env, work, entered_file) for _ in range(args.runs)]
        entered = statistics.median(r[0] for r in runs)
        total = statistics.median(r[1] for r in runs)
        base = statistics.median(baseline)
        report = {
            "runs": args.runs,
            "python_start_s": round(base, 4),
            "first_run_with_migration_total_s": round(cold_total, 4),
            "median_to_run_entered_s": round(entered, 4),
            "median_total_s": round(total, 4),
            "to_run_entered_vs_python_start": round(entered / base, 1),
            "total_vs_python_start": round(total / base, 1),
            "target_total_s": 0.5,
            "meets_target": total < 0.5,
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
