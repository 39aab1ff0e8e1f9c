"""Where the test cluster's binaries live: versions from tools/*/go.mod, paths under ~/.cache/jobplane."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
BIN_CACHE = Path(os.environ.get("JOBPLANE_BIN_CACHE", Path.home() / ".cache" / "jobplane" / "bin"))


class MissingBinary(RuntimeError):
    """A binary the cluster needs is absent: run scripts/setup-host.sh and build-bins.sh."""


def pinned_version(tool: str, module: str) -> str:
    """The version tools/<tool>/go.mod requires for module (the single source of truth for builds)."""
    text = (TOOLS / tool / "go.mod").read_text()
    m = re.search(rf"^(?:require\s+|\s+){re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not m:
        raise RuntimeError(f"{module} is not required in tools/{tool}/go.mod")
    return m.group(1)


@dataclass(frozen=True)
class KueueBuild:
    """Kueue's manager and what build-bins.sh copied from its module: CRDs, its RBAC roles, its webhooks."""

    version: str
    directory: Path

    @classmethod
    def locate(cls) -> KueueBuild:
        version = pinned_version("kueue-bin", "sigs.k8s.io/kueue")
        return cls(version, BIN_CACHE / f"kueue-{version}")

    @property
    def manager(self) -> Path:
        return self.directory / "kueue"

    @property
    def crds(self) -> list[Path]:
        return sorted((self.directory / "crds").glob("*.yaml"))

    @property
    def manager_role(self) -> Path:
        return self.directory / "manager-role.yaml"

    @property
    def secrets_role(self) -> Path:
        return self.directory / "manager-secrets-role.yaml"

    @property
    def webhooks(self) -> Path:
        return self.directory / "webhooks.yaml"

    def require(self) -> None:
        marker = self.directory / "version"
        complete = marker.is_file() and marker.read_text().strip() == self.version
        if not (complete and os.access(self.manager, os.X_OK)):
            raise MissingBinary(
                f"Kueue {self.version} is not built in {self.directory} "
                "(run tests/cluster/build-bins.sh kueue)"
            )


@dataclass(frozen=True)
class Binaries:
    """Paths of every program the cluster runs."""

    kubernetes_version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubelet: Path
    kube_proxy: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    helm: Path
    coredns: Path
    containerd: Path
    ctr: Path
    runc: Path

    @classmethod
    def locate(cls) -> Binaries:
        k8s_version = pinned_version("k8s-bins", "k8s.io/kubernetes")
        k8s = BIN_CACHE / f"k8s-{k8s_version}"
        etcd = BIN_CACHE / f"etcd-{pinned_version('etcd-bin', 'go.etcd.io/etcd/server/v3')}"
        kwok = BIN_CACHE / f"kwok-{pinned_version('kwok-bin', 'sigs.k8s.io/kwok')}"
        helm = BIN_CACHE / f"helm-{pinned_version('helm-bin', 'helm.sh/helm/v3')}"
        # "-min": CoreDNS with the plugins the Corefile uses alone (tools/coredns-bin/cmd/coredns).
        coredns = BIN_CACHE / f"coredns-{pinned_version('coredns-bin', 'github.com/coredns/coredns')}-min"

        def system(name: str) -> Path:
            found = shutil.which(name, path="/usr/bin:/usr/sbin:/usr/local/bin:/bin:/sbin")
            return Path(found) if found else Path("/usr/bin") / name

        return cls(
            kubernetes_version=k8s_version,
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            kube_scheduler=k8s / "kube-scheduler",
            kubelet=k8s / "kubelet",
            kube_proxy=k8s / "kube-proxy",
            kubectl=k8s / "kubectl",
            etcd=etcd / "etcd",
            kwok=kwok / "kwok",
            helm=helm / "helm",
            coredns=coredns / "coredns",
            containerd=system("containerd"),
            ctr=system("ctr"),
            runc=system("runc"),
        )

    def missing(self, *, node: bool = True, kwok: bool = True) -> list[Path]:
        """Binaries that are not executable; the node's (containerd, runc, kubelet, kube-proxy, CoreDNS) only
        when node=True."""
        wanted = [
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.kubectl,
            self.etcd,
        ]
        if kwok:
            wanted.append(self.kwok)
        if node:
            wanted += [self.kubelet, self.kube_proxy, self.coredns, self.containerd, self.ctr, self.runc]
        return [p for p in wanted if not os.access(p, os.X_OK)]

    def require(self, *, node: bool = True, kwok: bool = True) -> None:
        missing = self.missing(node=node, kwok=kwok)
        if missing:
            raise MissingBinary(
                "missing: "
                + ", ".join(map(str, missing))
                + " (run scripts/setup-host.sh and tests/cluster/build-bins.sh)"
            )
