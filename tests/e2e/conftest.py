"""End-to-end tests run against the local cluster from tests/cluster (cluster, namespace, testapp_image)."""

from __future__ import annotations

# Imported rather than listed in `pytest_plugins`, which pytest only accepts in the rootdir's conftest.
from tests.cluster.fixtures import cluster, namespace, pytest_runtest_makereport, testapp_image

__all__ = ["cluster", "namespace", "pytest_runtest_makereport", "testapp_image"]
