"""Kueue's controller manager as a host process on a test cluster: its CRDs, RBAC, webhooks and config."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.binaries import KueueBuild
from tests.cluster.cluster import Cluster, ClusterError, free_port, wait_for

__all__ = ["KUEUE_IDENTITY", "WEBHOOK_PREFIX", "kueue_webhook_configurations", "running_kueue"]

# The client identity Kueue runs as: bound only to Kueue's own ClusterRole (manager-role, from its module).
KUEUE_IDENTITY = "kueue-manager"
KUEUE_NAMESPACE = "kueue-system"
WEBHOOK_PREFIX = "jobplane-tests-kueue"
# Kueue reads its metrics serving certificate from this fixed path when its internal cert management is off
# (cmd/kueue/main.go). Each manager gets the cluster's certificate there through a bind mount in a mount
# namespace of its own, so nothing is written under /etc but this empty mount point.
METRICS_CERT_PATH = Path("/etc/kueue/metrics/certs")
# The groups whose webhooks we register: Kueue's own kinds and batch/v1 Jobs (the only integration we enable).
WEBHOOK_GROUPS = {"kueue.x-k8s.io", "batch"}
_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 1 << 18


def kueue_webhook_configurations(manifests: str, url: str, ca_bundle: str) -> list[dict[str, Any]]:
    """Kueue's Mutating/ValidatingWebhookConfigurations (config/components/webhook/manifests.yaml), pointed
    at ``url`` instead of its in-cluster Service, keeping only the webhooks of Kueue's kinds and Jobs.

    A Job's webhooks are called only for Jobs that carry Kueue's queue-name label: those are the Jobs Kueue
    manages (manageJobsWithoutQueueName is off), and no other Job of the cluster depends on this process.
    """
    configurations = []
    for doc in yaml.safe_load_all(manifests):
        if not doc or not doc.get("kind", "").endswith("WebhookConfiguration"):
            continue
        hooks = []
        for hook in doc.get("webhooks") or []:
            groups = {group for rule in hook.get("rules") or [] for group in rule.get("apiGroups") or []}
            if not groups or not groups <= WEBHOOK_GROUPS:
                continue
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": ca_bundle}
            if groups == {"batch"}:
                hook["objectSelector"] = {
                    "matchExpressions": [{"key": "kueue.x-k8s.io/queue-name", "operator": "Exists"}]
                }
            hooks.append(hook)
        kind = "mutating" if doc["kind"].startswith("Mutating") else "validating"
        doc["metadata"] = {"name": f"{WEBHOOK_PREFIX}-{kind}"}
        doc["webhooks"] = hooks
        configurations.append(doc)
    return configurations


def _config(workdir: Path, webhook_port: int, certs: Path) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": KUEUE_NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{free_port()}"},
        "metrics": {"bindAddress": f"127.0.0.1:{free_port()}"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(certs)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "integrations": {"frameworks": ["batch/job"]},
    }


def _own_mount_namespace(certs: Path) -> Callable[[], None]:
    """A preexec function: a private mount namespace in which ``certs`` is Kueue's metrics cert path."""

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        # Private first: a bind made under a shared / would show on the host too.
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        if libc.mount(str(certs).encode(), str(METRICS_CERT_PATH).encode(), None, _MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), f"mount --bind {certs} {METRICS_CERT_PATH}")

    return enter


def _apply_cluster_resources(cluster: Cluster, build: KueueBuild) -> None:
    for crd in build.crds:
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    for crd in build.crds:
        name = yaml.safe_load(crd.read_text())["metadata"]["name"]
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUEUE_NAMESPACE}}
    bodies: list[dict[str, Any]] = [namespace]
    # Kueue's ClusterRole, and its Role on Secrets of its own namespace, each bound to Kueue's identity only.
    for path, where in ((build.manager_role, {}), (build.secrets_role, {"namespace": KUEUE_NAMESPACE})):
        role = yaml.safe_load(path.read_text())
        role["metadata"] = {"name": "jobplane-tests-kueue-manager", **where}
        bodies.append(role)
        bodies.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": f"{role['kind']}Binding",
                "metadata": dict(role["metadata"]),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": role["kind"],
                    "name": role["metadata"]["name"],
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KUEUE_IDENTITY}
                ],
            }
        )
    for body in bodies:
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running_kueue(cluster: Cluster) -> Iterator[Path]:
    """Kueue's manager on ``cluster`` with the batch/job integration only; yields its log file.

    Its CRDs and ClusterRole come from the build's cache directory. It runs as its own client identity
    (a certificate of the cluster's CA bound to Kueue's ClusterRole, not cluster-admin), serves its
    webhooks on 127.0.0.1 with a certificate of the cluster's CA, and its webhook configurations point
    there by URL. On exit the webhook configurations go first, then the process (by its PID).
    """
    build = KueueBuild.locate()
    build.require()
    workdir = cluster.workdir / "kueue"
    certs = workdir / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    serving = cluster.serving_cert("kueue-webhook")
    shutil.copyfile(serving.cert, certs / "tls.crt")
    shutil.copyfile(serving.key, certs / "tls.key")
    METRICS_CERT_PATH.mkdir(parents=True, exist_ok=True)
    _apply_cluster_resources(cluster, build)
    port = free_port()
    config = workdir / "config.yaml"
    config.write_text(json.dumps(_config(workdir, port, certs), indent=2))
    log_path = workdir / "kueue.log"
    env = {**os.environ, "KUBECONFIG": str(cluster.user_kubeconfig(KUEUE_IDENTITY))}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(build.manager), f"--config={config}", "--feature-gates=VisibilityOnDemand=false"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=workdir,
            env=env,
            preexec_fn=_own_mount_namespace(certs),
        )
    names = [f"{WEBHOOK_PREFIX}-mutating", f"{WEBHOOK_PREFIX}-validating"]
    try:

        def listening() -> bool:
            if process.poll() is not None:
                raise ClusterError(f"kueue exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
            return False

        wait_for("Kueue's webhook server", listening, timeout=120)
        ca_bundle = base64.b64encode(cluster.ca.cert.read_bytes()).decode()
        url = f"https://127.0.0.1:{port}"
        for configuration in kueue_webhook_configurations(build.webhooks.read_text(), url, ca_bundle):
            cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(configuration))
        yield log_path
    finally:
        for kind, name in zip(
            ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"), names, strict=True
        ):
            cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)
        _stop(process)
