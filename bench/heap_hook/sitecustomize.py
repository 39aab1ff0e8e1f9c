"""Bench hook: a process started with this folder on PYTHONPATH and JOBPLANE_BENCH_HEAP_DIR set starts
tracemalloc at its first SIGUSR2 and, at that one and every later one, writes a snapshot to
$JOBPLANE_BENCH_HEAP_DIR/<pid>-<n>.snapshot (bench/scale.py --tracemalloc). With JOBPLANE_BENCH_TRIM set,
each SIGUSR1 runs a full garbage collection and glibc's malloc_trim(0), so RSS read after it counts what
the process still uses, not what the allocators keep after freeing it (bench/scale.py --trim). With
JOBPLANE_BENCH_ALLOC_LOG set, a thread appends to that file every 5 s one JSON line of what the process's
memory is made of: RSS, CPU seconds so far, Python's small-object allocator (its arenas, the bytes in live
blocks) and glibc's (mallinfo2: in use, free but kept, mmapped) (bench/scale.py --alloc-log); with both set,
each SIGUSR1 also appends the commonest types of the objects alive after its collection.

Tracing starts at the signal, not at the interpreter's start: traced, the operator's imports alone took
35 s of CPU. Loaded by Python's ``site`` in every interpreter that has the folder on its path; it does
nothing unless the variable is set.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from itertools import count
from pathlib import Path
from types import FrameType

_DIR = os.environ.get("JOBPLANE_BENCH_HEAP_DIR")
_FRAMES = int(os.environ.get("JOBPLANE_BENCH_HEAP_FRAMES") or 12)
_TRIM = bool(os.environ.get("JOBPLANE_BENCH_TRIM"))
_ALLOC_LOG = os.environ.get("JOBPLANE_BENCH_ALLOC_LOG")
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
    if _ALLOC_LOG:
        # What is alive after the collection, by type (the 25 commonest): live memory, not the allocator's.
        objects = gc.get_objects()
        kinds = Counter(type(item).__name__ for item in objects)
        # Whole Kubernetes objects still referenced (a watch event's body, a copy of it), by kind, and how
        # many of them still carry their managedFields: what a run in flight costs in bodies held.
        bodies = Counter(
            f"{item['kind']}{'+managedFields' if 'managedFields' in (item.get('metadata') or {}) else ''}"
            for item in objects
            if type(item) is dict and isinstance(item.get("kind"), str) and "metadata" in item
        )
        del objects
        with open(_ALLOC_LOG, "a") as log:
            log.write(
                json.dumps(
                    {
                        "t": round(time.time(), 1),
                        "pid": os.getpid(),
                        "gc_objects": kinds.most_common(25),
                        "k8s_bodies": bodies.most_common(12),
                    }
                )
                + "\n"
            )


if _TRIM:
    signal.signal(signal.SIGUSR1, _trim)


_PYMALLOC_FIELDS = {
    "# arenas allocated current": "arenas",
    "# arenas highwater mark": "arenas_highwater",
    "# bytes in allocated blocks": "live_bytes",
    "# bytes in available blocks": "free_block_bytes",
}


# Every line sys._debugmallocstats() writes (Python 3.11), and nothing a log line of the process looks like.
_STATS_LINE = re.compile(
    r"^(# .* = +[0-9,]+"
    r"|Small block threshold = .*"
    r"|class +size +num pools .*"
    r"|-----[- ]*"
    r"|Total += +[0-9,]+"
    r"|arena map counts"
    r"| +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+"
    r"| *[0-9]+ free ([0-9]+-sized )?Py[A-Za-z]+Objects \* [0-9]+ bytes each = +[0-9,]+"
    r"|[0-9]+ (unused pools|arenas) \* [0-9]+ bytes(/arena)? += +[0-9,]+"
    r"|)$"
)


_MALLINFO2 = (
    ("arena", "ordblks", "smblks", "hblks", "hblkhd"),
    ("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
)


class _MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2, field for field (every one a size_t)."""

    _fields_ = [(name, ctypes.c_size_t) for names in _MALLINFO2 for name in names]


def _pymalloc() -> dict[str, int]:
    """sys._debugmallocstats() writes to the C stderr: read it back, hand on any other thread's lines."""
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        figures, others = {}, []
        for line in capture.read().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in _PYMALLOC_FIELDS:
                figures[_PYMALLOC_FIELDS[key.strip()]] = int(re.sub(r"[^0-9]", "", value))
            elif not _STATS_LINE.match(line):
                others.append(line)
    if others:
        os.write(2, ("\n".join(others) + "\n").encode())
    return figures


def _sample_forever(path: str) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    mib = 1 << 20
    while True:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        glibc = libc.mallinfo2()
        pymalloc = _pymalloc()
        line = {
            "t": round(time.time(), 1),
            "pid": os.getpid(),
            "rss_mib": round(rss / mib, 1),
            "cpu_s": round(sum(os.times()[:2]), 1),
            "pymalloc_arenas_mib": pymalloc.get("arenas", 0),  # 1 MiB each (3.10+ on 64-bit)
            "pymalloc_arenas_highwater_mib": pymalloc.get("arenas_highwater", 0),
            "pymalloc_live_mib": round(pymalloc.get("live_bytes", 0) / mib, 1),
            "pymalloc_free_blocks_mib": round(pymalloc.get("free_block_bytes", 0) / mib, 1),
            "glibc_in_use_mib": round(glibc.uordblks / mib, 1),
            "glibc_free_kept_mib": round(glibc.fordblks / mib, 1),
            "glibc_mmapped_mib": round(glibc.hblkhd / mib, 1),
        }
        with open(path, "a") as log:
            log.write(json.dumps(line) + "\n")
        time.sleep(5)


if _ALLOC_LOG:
    threading.Thread(target=_sample_forever, args=(_ALLOC_LOG,), name="bench-alloc-log", daemon=True).start()
