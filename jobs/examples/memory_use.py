"""AllocateMemory: uses a chosen amount of memory, to see a queue's memory limit at work (OOMKilled)."""

from __future__ import annotations

from jobplane import IntegerVar, Job, register_jobs

name = "Getting started"

PAGE = 4096


class AllocateMemory(Job):
    """Hold N MiB of memory for a moment; above the pod's memory limit the kernel kills the job."""

    megabytes = IntegerVar(min_value=1, max_value=8192, default=16, description="MiB to allocate and touch.")

    class Meta:
        name = "Allocate memory"
        description = "Allocates and touches memory; run it on a queue with a memory limit to see OOMKilled."
        has_sensitive_variables = False

    def run(self, *, megabytes: int) -> dict[str, int]:
        block = bytearray(megabytes * 1024 * 1024)
        # Writing one byte per page makes the kernel really back the memory (and account it).
        for offset in range(0, len(block), PAGE):
            block[offset] = 1
        self.logger.success("Held %d MiB", megabytes)
        return {"megabytes": megabytes}


register_jobs(AllocateMemory)
