"""End-to-end tests run against the local cluster from tests/cluster (cluster, namespace, testapp_image)."""

from __future__ import annotations

import pytest

from jobplane_crds.render import CRDS_DIR
from tests.cluster import images
from tests.cluster.cluster import Cluster, wait_for

# Imported rather than listed in `pytest_plugins`, which pytest only accepts in the rootdir's conftest.
from tests.cluster.fixtures import cluster, namespace, pytest_runtest_makereport, testapp_image

__all__ = [
    "cluster",
    "jobplane_crds",
    "namespace",
    "project_image",
    "pytest_runtest_makereport",
    "testapp_image",
]

CRD_NAMES = ("jobdefinitions.jobplane.io", "jobruns.jobplane.io", "jobqueues.jobplane.io")


@pytest.fixture(scope="session")
def project_image(cluster: Cluster) -> str:
    """The image built from the root Dockerfile (examples baked in), imported into the real node."""
    return cluster.import_image(images.project_image())


@pytest.fixture(scope="session")
def jobplane_crds(cluster: Cluster) -> Cluster:
    """The cluster with the generated jobplane.io CRDs applied and served."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRDS_DIR))
    for name in CRD_NAMES:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    # Discovery can lag establishment by a moment; kubectl needs it for short names.
    wait_for(
        "jobplane.io in discovery", lambda: "jobruns" in cluster.kubectl("api-resources").stdout, timeout=30
    )
    return cluster
