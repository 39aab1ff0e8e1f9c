"""End-to-end tests run against the local cluster from tests/cluster (cluster, namespace, testapp_image)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster import images
from tests.cluster.cluster import Cluster

# Imported rather than listed in `pytest_plugins`, which pytest only accepts in the rootdir's conftest.
from tests.cluster.fixtures import cluster, namespace, pytest_runtest_makereport, testapp_image
from tests.conftest import PostgresServer
from tests.e2e.api_support import running_stack
from tests.stack import ADMISSION_OPT_OUT, Stack, apply_crds

__all__ = [
    "api_stack",
    "cluster",
    "jobplane_crds",
    "namespace",
    "project_image",
    "pytest_runtest_makereport",
    "testapp_image",
    "without_admission",
]


@pytest.fixture(scope="session")
def project_image(cluster: Cluster) -> str:
    """The image built from the root Dockerfile (examples baked in), imported into the real node."""
    return cluster.import_image(images.project_image())


@pytest.fixture(scope="session")
def jobplane_crds(cluster: Cluster) -> Cluster:
    """The cluster with the generated jobplane.io CRDs applied and served."""
    apply_crds(cluster)
    return cluster


@pytest.fixture
def without_admission(jobplane_crds: Cluster, namespace: str) -> str:
    """The test's namespace, out of the admission webhook's reach: for tests of a lower layer (the CRD
    schema, the API's gateway) that store runs no admission would let through."""
    jobplane_crds.kubectl("label", "namespace", namespace, f"{ADMISSION_OPT_OUT}=disabled")
    return namespace


@pytest.fixture(scope="module")
def api_stack(
    jobplane_crds: Cluster,
    project_image: str,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The operator and the API on the session cluster, a database of their own, one namespace per module."""
    workdir = tmp_path_factory.mktemp("stack")
    with running_stack(jobplane_crds, postgres.create_database(), project_image, workdir) as running:
        yield running
