"""Command line: `python -m tests.cluster.images` builds the base, pause, test and project images."""

from __future__ import annotations

from tests.cluster.images import main

raise SystemExit(main())
