"""Bench hook: a process started with this folder on PYTHONPATH and JOBPLANE_BENCH_HEAP_DIR set starts
tracemalloc at its first SIGUSR2 and, at that one and every later one, writes a snapshot to
$JOBPLANE_BENCH_HEAP_DIR/<pid>-<n>.snapshot (bench/scale.py --tracemalloc). With JOBPLANE_BENCH_TRIM set,
each SIGUSR1 runs a full garbage collection and glibc's malloc_trim(0), so RSS read after it counts what
the process still uses, not what the allocators keep after freeing it (bench/scale.py --trim).

Tracing starts at the signal, not at the interpreter's start: traced, the operator's imports alone took
35 s of CPU. Loaded by Python's ``site`` in every interpreter that has the folder on its path; it does
nothing unless the variable is set.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import tracemalloc
from itertools import count
from pathlib import Path
from types import FrameType

_DIR = os.environ.get("JOBPLANE_BENCH_HEAP_DIR")
_FRAMES = int(os.environ.get("JOBPLANE_BENCH_HEAP_FRAMES") or 12)
_TRIM = bool(os.environ.get("JOBPLANE_BENCH_TRIM"))
_numbers = count()


def _dump(_signum: int, _frame: FrameType | None) -> None:
    assert _DIR is not None
    if not tracemalloc.is_tracing():
        tracemalloc.start(_FRAMES)
    path = Path(_DIR) / f"{os.getpid()}-{next(_numbers)}.snapshot"
    tracemalloc.take_snapshot().dump(str(path) + ".part")
    os.replace(str(path) + ".part", path)  # whole, or absent: the bench waits for the name


if _DIR:
    signal.signal(signal.SIGUSR2, _dump)


def _trim(_signum: int, _frame: FrameType | None) -> None:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


if _TRIM:
    signal.signal(signal.SIGUSR1, _trim)
