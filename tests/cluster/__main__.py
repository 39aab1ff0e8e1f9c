"""Command line for the test cluster: `python -m tests.cluster up|down|status|images`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from tests.cluster import images
from tests.cluster.cluster import DEFAULT_BASE, STATE_FILE, Cluster, ClusterState, teardown


def _latest_workdir() -> Path | None:
    found = sorted(DEFAULT_BASE.glob(f"jp-*/{STATE_FILE}"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a cluster, print its kubeconfig path, leave it running")
    up.add_argument(
        "--no-node", action="store_true", help="control plane and kwok only, no kubelet/containerd"
    )
    up.add_argument("--no-kwok", action="store_true", help="no simulated node pools")
    up.add_argument(
        "--image",
        action="append",
        default=[],
        choices=["testapp"],
        help="also import a test image into the node",
    )
    down = sub.add_parser("down", help="stop a cluster started by `up` (default: the newest)")
    down.add_argument("workdir", nargs="?", type=Path)
    down.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    status = sub.add_parser("status", help="print the state of a cluster started by `up`")
    status.add_argument("workdir", nargs="?", type=Path)
    sub.add_parser("images", help="build (or find cached) the base, pause and test images")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )

    if args.cmd == "images":
        return images.main([])
    if args.cmd == "up":
        t0 = time.monotonic()
        cluster = Cluster(node=not args.no_node, kwok=not args.no_kwok, owned=False)
        cluster.start()
        for name in args.image:
            if name == "testapp":
                print("image:", cluster.import_image(images.testapp_image()), file=sys.stderr)
        print(
            f"started in {time.monotonic() - t0:.1f}s; memory (RSS MiB): {cluster.memory_rss_mib()}",
            file=sys.stderr,
        )
        print(f"stop with: python -m tests.cluster down {cluster.workdir}", file=sys.stderr)
        print(cluster.kubeconfig)
        return 0
    workdir = args.workdir or _latest_workdir()
    if workdir is None or not (workdir / STATE_FILE).exists():
        print("no cluster found", file=sys.stderr)
        return 1
    state = ClusterState.load(workdir)
    if args.cmd == "status":
        print(json.dumps(state.__dict__, default=lambda o: o.__dict__, indent=2))
        return 0
    teardown(state, keep_workdir=args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
