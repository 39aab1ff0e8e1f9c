"""The runs as the operator's own status writes left them, until its runs index shows those writes."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from jobplane_crds.runview import RunView
from jobplane_operator.reconcile.jobrun import indexed_run

__all__ = ["OwnWrites"]

RunKey = tuple[str, str]  # (namespace, name)


class OwnWrites:
    """A run's status written by this process, kept until the runs index catches up with it.

    The index follows the runs' watch, which delivers our own write a moment (under load, seconds) after
    the apiserver took it. A Job event handled meanwhile would decide on the run as it was before the
    write: its status write is then refused (the resourceVersion changed) and the run read again, three
    requests for nothing (the refused write, the read, the pods listed again). Measured in a burst of
    1,000 runs: 0.45 such reads per run. Deciding on the run the write's answer returned spares them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # By run: the resourceVersions our writes were made over, and the run after the last of them.
        self._runs: dict[RunKey, tuple[frozenset[str], dict[str, Any]]] = {}

    def wrote(self, over: str | None, run: Mapping[str, Any]) -> None:
        """A status write made over resourceVersion ``over`` succeeded; ``run`` is the apiserver's answer.
        A write without a resourceVersion (``over`` None) is not kept: nothing tells its version apart."""
        view = RunView(run)
        if not over or not view.resource_version:
            return
        key = (view.namespace, view.name)
        kept = indexed_run(run)
        with self._lock:
            versions, last = self._runs.get(key, (frozenset(), {}))
            if RunView(last).resource_version != over:
                versions = frozenset()  # made over a version not ours: the index saw it (or will)
            self._runs[key] = (versions | {over}, kept)

    def latest(self, indexed: dict[str, Any] | None) -> dict[str, Any] | None:
        """The run to decide on: the one our last write returned while the index still holds a version
        that write replaced, else the index's (which has caught up, or moved on past us)."""
        if indexed is None:
            return None
        view = RunView(indexed)
        key = (view.namespace, view.name)
        with self._lock:
            entry = self._runs.get(key)
            if entry is None:
                return indexed
            versions, written = entry
            if view.resource_version in versions and view.uid == RunView(written).uid:
                return written
            del self._runs[key]
            return indexed

    def forget(self, indexed: Mapping[RunKey, str | None]) -> None:
        """Drop what the index has caught up with: ``indexed`` maps each run it holds to its version."""
        with self._lock:
            for key, (versions, _) in list(self._runs.items()):
                if key not in indexed or indexed[key] not in versions:
                    del self._runs[key]

    def __len__(self) -> int:
        return len(self._runs)
