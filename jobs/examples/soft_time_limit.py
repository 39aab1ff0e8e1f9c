"""SlowCleanup: shows a soft time limit: the job catches SoftTimeLimitExceeded, cleans up, and stops."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from jobplane import IntegerVar, Job, SoftTimeLimitExceeded, register_jobs

name = "Getting started"

STEP_SECONDS = 0.2


class SlowCleanup(Job):
    """Work through slow steps in a scratch folder; remove the folder when the soft limit stops it."""

    steps = IntegerVar(
        min_value=1,
        max_value=50,
        default=10,
        description=f"Steps of {STEP_SECONDS:g} s each: the default of 10 runs past the 1 s soft time limit.",
    )

    class Meta:
        name = "Soft time limit with clean-up"
        description = """
            Each step writes a file into a scratch folder. At the soft time limit (1 s) the job is
            interrupted by SoftTimeLimitExceeded: it removes the folder, logs how far it got and
            re-raises, so the run ends as FAILURE well before the hard limit (10 s) would kill it.
        """
        has_sensitive_variables = False
        soft_time_limit = 1  # Nautobot requires whole seconds.
        time_limit = 10

    def run(self, *, steps: int) -> dict[str, Any]:
        scratch = Path(tempfile.mkdtemp(prefix="jobplane-slow-cleanup-"))
        self.logger.info("Working in %s", scratch)
        done = 0
        try:
            for step in range(1, steps + 1):
                (scratch / f"step-{step:02d}.txt").write_text(f"step {step}\n", encoding="utf-8")
                time.sleep(STEP_SECONDS)
                done = step
        except SoftTimeLimitExceeded:
            self.logger.warning("Soft time limit reached after %d of %d steps: cleaning up", done, steps)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            self.logger.info("Removed %s", scratch)
        self.logger.success("All %d steps done", steps)
        return {"steps": done}


register_jobs(SlowCleanup)
