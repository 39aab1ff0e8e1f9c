"""Benchmark: `jobplane runjob --local` of a no-op job, beside Nautobot's `nautobot-server runjob --local`.

Runs, in one script run and interleaved round by round so that the machine's load falls on each alike:
a bare Python start (`python -c pass`, the baseline), Jobplane's no-op local run on SQLite, and, when
`nautobot-server` is installed, Nautobot's no-op local run. Prints the medians of wall time and of CPU
time (the process and its children, user + system: what a loaded machine inflates least), each as a
ratio to the baseline, and Jobplane's median against Nautobot's. Without Nautobot it says so and prints
Jobplane's figures alone. The issue's aim: Jobplane's median at most 0.3 s.

    .venv/bin/python bench/runjob_overhead.py [--runs 21] [--jobplane PATH]
    .venv/bin/python bench/runjob_overhead.py --nautobot-server PATH --nautobot-job CLASS_PATH \\
        --nautobot-username USER

For Nautobot, the no-op job (NAUTOBOT_NOOP_JOB below, `--print-nautobot-job` prints it) must be installed
in its JOBS_ROOT, registered (`nautobot-server post_upgrade`) and enabled, with NAUTOBOT_CONFIG set; the
script runs `nautobot-server runjob --local --username USER CLASS_PATH` as it is.

`--jobplane PATH` times another installation's `jobplane` command (e.g. a fresh venv with the SDK alone,
`pip install .`); by default the console script next to this interpreter. `--compare PATH` times a second
installation in the same rounds (e.g. a fresh venv of the commit before a change: an A/B at the same load),
on its own copy of the store, and prints Jobplane's medians over its.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

AIM_SECONDS = 0.3

NOOP_JOB = """
from jobplane import Job, register_jobs


class Noop(Job):
    class Meta:
        has_sensitive_variables = False

    def run(self):
        pass


register_jobs(Noop)
"""

# The same job for Nautobot: its Job API is the one Jobplane copies.
NAUTOBOT_NOOP_JOB = NOOP_JOB.replace("from jobplane import", "from nautobot.apps.jobs import")


@dataclass
class Series:
    """One command, timed again and again."""

    label: str
    command: list[str]
    env: dict[str, str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def time_once(self, cwd: Path) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(self.command, env=self.env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        self.wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def _jobplane_command(path: str | None) -> list[str]:
    if path:
        return [path]
    script = Path(sys.executable).with_name("jobplane")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobplane.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--jobplane", help="the jobplane command to time (default: this venv's)")
    parser.add_argument("--compare", help="another jobplane command to time in the same rounds (A/B)")
    parser.add_argument("--nautobot-server", default=shutil.which("nautobot-server"))
    parser.add_argument(
        "--nautobot-job", default="bench_noop.Noop", help="class path of Nautobot's no-op job"
    )
    parser.add_argument("--nautobot-username", default="admin", help="an existing Nautobot user")
    parser.add_argument("--print-nautobot-job", action="store_true", help="print Nautobot's no-op job, exit")
    args = parser.parse_args()
    if args.print_nautobot_job:
        print(NAUTOBOT_NOOP_JOB.strip())
        return 0

    with tempfile.TemporaryDirectory(prefix="jobplane-bench-") as tmp:
        work = Path(tmp)
        (work / "jobs").mkdir()
        (work / "jobs" / "bench_noop.py").write_text(NOOP_JOB)
        env = {
            **os.environ,
            "JOBPLANE_JOBS_ROOT": str(work / "jobs"),
            "JOBPLANE_DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        }
        baseline = Series("python -c pass", [sys.executable, "-c", "pass"], env)
        jobplane = Series(
            "jobplane runjob --local",
            [*_jobplane_command(args.jobplane), "runjob", "--local", "--quiet", "bench_noop.Noop"],
            env,
        )
        series = [baseline, jobplane]
        compare: Series | None = None
        if args.compare:
            compare = Series(
                "--compare runjob --local",
                [args.compare, "runjob", "--local", "--quiet", "bench_noop.Noop"],
                {**env, "JOBPLANE_DATABASE_URL": f"sqlite:///{work / 'compare.sqlite3'}"},
            )
            series.append(compare)
        nautobot: Series | None = None
        if args.nautobot_server:
            nautobot = Series(
                "nautobot-server runjob --local",
                [
                    args.nautobot_server,
                    "runjob",
                    "--local",
                    "--username",
                    args.nautobot_username,
                    args.nautobot_job,
                ],
                dict(os.environ),
            )
            series.append(nautobot)
        else:
            print(
                "nautobot-server is not installed (not on PATH, no --nautobot-server): "
                "Jobplane's figures alone, against the bare Python start"
            )

        # The first run creates the SQLite schema (migrations): timed once, apart.
        first = Series("first run, with migrations", jobplane.command, env)
        first.time_once(work)
        if compare is not None:
            compare.time_once(work)  # its store's migrations, not timed
            compare.wall.clear()
            compare.cpu.clear()
        for _ in range(args.runs):
            for one in series:
                one.time_once(work)

    header = f"{'command':<32} {'wall p50':>9} {'x base':>7} {'cpu p50':>9} {'x base':>7}"
    print(f"\n{header}   ({args.runs} runs)")
    for one in series:
        print(
            f"{one.label:<32} {one.wall_median:>8.3f}s {one.wall_median / baseline.wall_median:>7.1f}"
            f" {one.cpu_median:>8.3f}s {one.cpu_median / baseline.cpu_median:>7.1f}"
        )
    print(f"{first.label:<32} {first.wall[0]:>8.3f}s")
    report: dict[str, object] = {
        "runs": args.runs,
        "python_start_wall_s": round(baseline.wall_median, 4),
        "python_start_cpu_s": round(baseline.cpu_median, 4),
        "jobplane_wall_s": round(jobplane.wall_median, 4),
        "jobplane_cpu_s": round(jobplane.cpu_median, 4),
        "jobplane_wall_vs_python_start": round(jobplane.wall_median / baseline.wall_median, 2),
        "jobplane_cpu_vs_python_start": round(jobplane.cpu_median / baseline.cpu_median, 2),
        "first_run_with_migrations_s": round(first.wall[0], 4),
        "nautobot_installed": nautobot is not None,
        "aim_s": AIM_SECONDS,
        "jobplane_meets_aim": jobplane.wall_median <= AIM_SECONDS,
    }
    if compare is not None:
        print(
            f"\nJobplane / --compare: wall {jobplane.wall_median / compare.wall_median:.3f}, "
            f"CPU {jobplane.cpu_median / compare.cpu_median:.3f}"
        )
        report |= {
            "compare_wall_s": round(compare.wall_median, 4),
            "compare_cpu_s": round(compare.cpu_median, 4),
            "jobplane_vs_compare_wall": round(jobplane.wall_median / compare.wall_median, 3),
            "jobplane_vs_compare_cpu": round(jobplane.cpu_median / compare.cpu_median, 3),
        }
    if nautobot is not None:
        ratio = jobplane.wall_median / nautobot.wall_median
        print(f"\nJobplane / Nautobot (wall medians): {ratio:.3f}")
        report |= {
            "nautobot_wall_s": round(nautobot.wall_median, 4),
            "nautobot_cpu_s": round(nautobot.cpu_median, 4),
            "jobplane_vs_nautobot_wall": round(ratio, 3),
            "jobplane_vs_nautobot_cpu": round(jobplane.cpu_median / nautobot.cpu_median, 3),
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
