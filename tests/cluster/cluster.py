"""Start and stop the local test cluster: etcd, control plane, one real kubelet node and kwok node pools."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.cluster import images as image_builds
from tests.cluster import network
from tests.cluster.binaries import Binaries
from tests.cluster.pki import CertificateAuthority, KeyPair, service_account_keys

log = logging.getLogger(__name__)

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
KWOK_STAGES = HERE / "kwok" / "stages.yaml"
# The kubelet refuses a loopback --node-ip, so the apiserver reaches it by the Hostname address instead;
# naming the node "localhost" makes that address resolve to 127.0.0.1, where the kubelet listens.
REAL_NODE = "localhost"
KWOK_NODE_LABEL = "jobplane.io/kwok"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
# Work dirs live on disk (/var/tmp), not on the /tmp tmpfs: container images and snapshots go there. Paths
# stay short because containerd's socket path must fit in a sockaddr_un.
DEFAULT_BASE = Path(os.environ.get("JOBPLANE_CLUSTER_BASE", "/var/tmp"))
STATE_FILE = "cluster.json"
KCM_CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "ttl-after-finished-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "deployment-controller",
    "replicaset-controller",
    "node-lifecycle-controller",
    # Projected service-account volumes include the kube-root-ca.crt ConfigMap; without its publisher pods
    # that mount a token never start.
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    "taint-eviction-controller",
    # Services' endpoints, which kube-proxy (EndpointSlices) and CoreDNS route and answer from.
    "endpointslice-controller",
    "endpoints-controller",
)


class ClusterError(RuntimeError):
    """The cluster could not be started or a wait ran past its deadline."""


def wait_for(what: str, check: Callable[[], T | None], *, timeout: float, interval: float = 0.2) -> T:
    """Poll check() until it returns something truthy; raise ClusterError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise ClusterError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ProcessRecord:
    """A process the cluster started; kept in cluster.json so another command can stop exactly these PIDs."""

    name: str
    pid: int
    exe: str
    log: str


@dataclass
class ClusterState:
    """What `down` needs to tear a cluster down from another process."""

    workdir: str
    kubeconfig: str
    apiserver: str
    processes: list[ProcessRecord] = field(default_factory=list)
    containerd_socket: str = ""
    cgroup_root: str = ""
    bridge: str = ""
    # The router namespace where kube-proxy keeps its rules (tests/cluster/network.py).
    netns: str = ""
    # The pytest process that owns the cluster; 0 for one started by hand (`up`), which only `down` stops.
    owner_pid: int = 0

    def save(self) -> None:
        path = Path(self.workdir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.rename(path)

    @classmethod
    def load(cls, workdir: Path) -> ClusterState:
        raw = json.loads((workdir / STATE_FILE).read_text())
        raw["processes"] = [ProcessRecord(**p) for p in raw["processes"]]
        return cls(**raw)


def _pid_is(record: ProcessRecord) -> bool:
    """True if record.pid is still the process we started (PIDs get reused)."""
    try:
        return os.readlink(f"/proc/{record.pid}/exe").removesuffix(" (deleted)") == record.exe
    except OSError:
        return False


def _stop_pid(record: ProcessRecord, timeout: float = 10.0) -> None:
    """SIGTERM the process group we created for this process, then SIGKILL it if it does not go."""
    if not _pid_is(record):
        return
    log.debug("stopping %s pid=%s", record.name, record.pid)
    try:
        # Each process was started in its own session, so its group id is its own pid.
        os.killpg(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just watch /proc.
            if os.waitpid(record.pid, os.WNOHANG)[0] == record.pid:
                return
        except ChildProcessError:
            if not _pid_is(record):
                return
        time.sleep(0.05)
    log.warning("%s pid=%s ignored SIGTERM for %.0fs; killing", record.name, record.pid, timeout)
    try:
        os.killpg(record.pid, signal.SIGKILL)
        os.waitpid(record.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _ancestors() -> set[int]:
    """This process and the ones it descends from: `timeout 60 python -m tests.cluster down <workdir>` names
    the work dir too, and must not be taken for one of the cluster's leftovers."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def _processes_under(path: str) -> list[int]:
    """PIDs whose command line mentions our work dir (containerd shims carry its socket path); ours alone,
    never this process or its ancestors."""
    found, mine = [], _ancestors()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmdline and int(entry.name) not in mine:
            found.append(int(entry.name))
    return found


def _mounts_under(path: str) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == path or mount_point.startswith(path + "/"):
            mounts.append(mount_point)
    return mounts


def _cgroup_hierarchies() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():  # cgroup v2: a single hierarchy
        return [root]
    return [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "unified"]


class Cluster:
    """One local cluster in its own work directory. Use `start()` / `stop()`, or as a context manager."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        node: bool = True,
        kwok: bool = True,
        binaries: Binaries | None = None,
        owned: bool = True,
    ) -> None:
        self.bins = binaries or Binaries.locate()
        self.node = node
        self.kwok = kwok
        self.bins.require(node=node, kwok=kwok)
        self.id = secrets.token_hex(3)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"jp-{self.id}-", dir=DEFAULT_BASE))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.pki = self.workdir / "pki"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.network = network.NodeNetwork(self.id, network.pick_octet(self.id))
        self.apiserver_port = free_port()
        # Pods reach the apiserver through the `kubernetes` Service, whose endpoint is this address: the
        # host's own address on the cluster's bridge when there is a node, loopback otherwise.
        self.apiserver_ip = self.network.gateway_ip if node else "127.0.0.1"
        self.apiserver = f"https://{self.apiserver_ip}:{self.apiserver_port}"
        self.containerd_socket = self.workdir / "containerd.sock"
        self.cgroup_root = f"/jobplane-{self.id}" if node else ""
        self.bridge = self.network.bridge if node else ""
        self.state = ClusterState(
            str(self.workdir),
            str(self.kubeconfig),
            self.apiserver,
            containerd_socket=str(self.containerd_socket) if node else "",
            cgroup_root=self.cgroup_root,
            bridge=self.bridge,
            netns=self.network.netns if node else "",
            owner_pid=os.getpid() if owned else 0,
        )
        self._children: list[subprocess.Popen[bytes]] = []
        self.timings: dict[str, float] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, timeout: float = 120.0) -> None:
        t0 = time.monotonic()
        try:
            self._write_pki()
            if self.node:
                self.network.create()
            self._start_etcd()
            self._start_apiserver()
            if self.node:
                # containerd and the kubelet start while the apiserver warms up; the kubelet retries until it
                # answers.
                self._start_containerd()
            self._mark("processes launched", t0)
            wait_for("kube-apiserver /readyz", self._apiserver_ready, timeout=timeout)
            self._mark("apiserver ready", t0)
            self._start_controller_manager()
            self._start_scheduler()
            if self.node:
                self._start_kube_proxy()
                self._start_coredns()
                wait_for("containerd socket", self.containerd_socket.exists, timeout=30)
                self._import_image(image_builds.pause_image())
                self._start_kubelet()
            if self.kwok:
                self._create_kwok_nodes()
                self._start_kwok()
            self._wait_ready(timeout)
            self._mark("cluster ready", t0)
        except BaseException:
            log.error("cluster start failed; logs are in %s", self.logs)
            self.stop(keep_workdir=True)
            raise

    def _mark(self, what: str, t0: float) -> None:
        self.timings[what] = round(time.monotonic() - t0, 2)
        log.info("%s after %.1fs", what, self.timings[what])

    def stop(self, *, keep_workdir: bool | None = None) -> None:
        """Stop everything this cluster started; remove its containers, mounts, cgroups and files."""
        if keep_workdir is None:
            keep_workdir = os.environ.get("JOBPLANE_KEEP_CLUSTER") == "1"
        teardown(self.state, keep_workdir=keep_workdir)

    # -- pieces ----------------------------------------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        exe: Path,
        args: Iterable[str],
        env: dict[str, str] | None = None,
        *,
        netns: str = "",
    ) -> None:
        logfile = self.logs / f"{name}.log"
        # nsenter execs the program in the named network namespace: the PID and /proc/<pid>/exe are its own.
        enter = ["nsenter", f"--net={netns}"] if netns else []
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                [*enter, str(exe), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own session: the process outlives `python -m tests.cluster up`, and killpg(pid) stops
                # exactly it.
                start_new_session=True,
                cwd=self.workdir,
                env={**os.environ, **(env or {})},
            )
        self._children.append(proc)
        self.state.processes.append(ProcessRecord(name, proc.pid, os.path.realpath(exe), str(logfile)))
        self.state.save()
        log.debug("started %s pid=%s", name, proc.pid)

    def _check_alive(self) -> None:
        for proc, rec in zip(self._children, self.state.processes, strict=True):
            if proc.poll() is not None:
                tail = Path(rec.log).read_text(errors="replace")[-3000:]
                raise ClusterError(f"{rec.name} exited with {proc.returncode}; end of {rec.log}:\n{tail}")

    def _write_pki(self) -> None:
        ca = CertificateAuthority(self.pki)
        self.authority = ca
        self.ca = ca.pair
        sans = [
            "IP:127.0.0.1",
            f"IP:{self.apiserver_ip}",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            f"DNS:kubernetes.default.svc.{network.CLUSTER_DOMAIN}",
            f"IP:{self.network.kubernetes_service_ip}",
        ]
        self.apiserver_cert = ca.issue("apiserver", "/CN=kube-apiserver", server_sans=sans)
        self.admin_cert = ca.issue("admin", "/O=system:masters/CN=admin", client=True)
        # The apiserver's identity towards kubelets (logs, exec): the kubelet asks the apiserver to authorize
        # it.
        self.kubelet_client_cert = ca.issue(
            "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet", client=True
        )
        self.sa = service_account_keys(self.pki)
        self.kubeconfig.write_text(self._kubeconfig("admin", self.admin_cert))
        if self.node:
            self.node_cert = ca.issue("node", f"/O=system:nodes/CN=system:node:{REAL_NODE}", client=True)
            self.kubelet_serving = ca.issue(
                "kubelet", f"/CN={REAL_NODE}", server_sans=["IP:127.0.0.1", f"DNS:{REAL_NODE}"]
            )
            (self.workdir / "node.kubeconfig").write_text(
                self._kubeconfig(f"system:node:{REAL_NODE}", self.node_cert)
            )
            for user, file in ((network.KUBE_PROXY_USER, "kube-proxy"), (network.COREDNS_USER, "coredns")):
                pair = ca.issue(file, f"/CN={user}", client=True)
                (self.workdir / f"{file}.kubeconfig").write_text(self._kubeconfig(user, pair))

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for ``user`` (a client certificate of this cluster's CA, in ``groups``): an identity
        with only the rights RBAC gives it, for tests that act as someone other than the admin."""
        path = self.workdir / f"{user}.kubeconfig"
        if not path.exists():
            subject = "".join(f"/O={group}" for group in groups) + f"/CN={user}"
            pair = self.authority.issue(f"user-{user}", subject, client=True)
            path.write_text(self._kubeconfig(user, pair))
        return path

    def serving_cert(self, name: str) -> KeyPair:
        """A serving certificate for 127.0.0.1 signed by the cluster's CA, which the apiserver trusts in a
        webhook configuration's caBundle (see ``ca``)."""
        return self.authority.issue(name, f"/CN={name}", server_sans=["IP:127.0.0.1", "DNS:localhost"])

    def _kubeconfig(self, user: str, pair: KeyPair) -> str:
        # JSON is valid YAML, and keeping the files as JSON spares a YAML dependency.
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "jobplane-test",
                "clusters": [
                    {
                        "name": "jobplane-test",
                        "cluster": {"server": self.apiserver, "certificate-authority": str(self.ca.cert)},
                    }
                ],
                "users": [
                    {
                        "name": user,
                        "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
                    }
                ],
                "contexts": [
                    {"name": "jobplane-test", "context": {"cluster": "jobplane-test", "user": user}}
                ],
            },
            indent=2,
        )

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            self.bins.etcd,
            [
                "--name=jobplane",
                f"--data-dir={self.workdir / 'etcd'}",
                "--log-level=warn",
                # Test data is disposable; fsync on a shared disk costs seconds per test.
                "--unsafe-no-fsync=true",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=jobplane=http://127.0.0.1:{peer}",
                "--listen-metrics-urls=",
            ],
        )

    def _start_apiserver(self) -> None:
        p = self.pki
        self._spawn(
            "kube-apiserver",
            self.bins.kube_apiserver,
            [
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={self.apiserver_ip}",
                f"--advertise-address={self.apiserver_ip}",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={p}",
                f"--tls-cert-file={self.apiserver_cert.cert}",
                f"--tls-private-key-file={self.apiserver_cert.key}",
                f"--client-ca-file={self.ca.cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.sa.cert}",
                f"--service-account-signing-key-file={self.sa.key}",
                # Per cluster, so two clusters' Service routes on this host do not collide.
                f"--service-cluster-ip-range={self.network.service_cidr}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                f"--kubelet-client-certificate={self.kubelet_client_cert.cert}",
                f"--kubelet-client-key={self.kubelet_client_cert.key}",
                f"--kubelet-certificate-authority={self.ca.cert}",
                # The kubelet listens on 127.0.0.1 only and its node is named "localhost" (see REAL_NODE).
                "--kubelet-preferred-address-types=Hostname,InternalIP",
                # Without a node there is no Service network: the loopback endpoint would only log errors.
                *([] if self.node else ["--endpoint-reconciler-type=none"]),
                "--profiling=false",
                "--v=1",
            ],
        )

    def _apiserver_ready(self) -> bool:
        self._check_alive()
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        ctx.load_cert_chain(str(self.admin_cert.cert), str(self.admin_cert.key))
        try:
            with urllib.request.urlopen(f"{self.apiserver}/readyz", context=ctx, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _start_controller_manager(self) -> None:
        k = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            self.bins.kube_controller_manager,
            [
                f"--kubeconfig={k}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
                f"--controllers={','.join(KCM_CONTROLLERS)}",
                f"--root-ca-file={self.ca.cert}",
                f"--service-account-private-key-file={self.sa.key}",
                "--use-service-account-credentials=false",
                # Check node health often so node-loss tests react quickly, but keep a 40 s grace (leases
                # renew every 10 s) so a loaded CI machine never marks a healthy node NotReady.
                "--node-monitor-period=2s",
                "--node-monitor-grace-period=40s",
                # Keep the last few finished pods for inspection rather than the default 12500.
                "--terminated-pod-gc-threshold=200",
                # Its client's default (20 requests/s, bursts of 30) is shared by every controller: the job
                # controller then makes about 7 pods/s, and 1,000 scheduled runs a minute (bench/
                # schedule_fire_lag.py) wait for their pods, polled meanwhile. Control planes that run Jobs
                # at that rate raise it, as here.
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                # Five Jobs synced at once (the default) made half a pod per fire at 1,000 schedules.
                "--concurrent-job-syncs=50",
            ],
        )

    def _start_scheduler(self) -> None:
        k = str(self.kubeconfig)
        self._spawn(
            "kube-scheduler",
            self.bins.kube_scheduler,
            [
                f"--kubeconfig={k}",
                f"--authentication-kubeconfig={k}",
                f"--authorization-kubeconfig={k}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    # -- the real node ---------------------------------------------------------------------------------------

    def _start_containerd(self) -> None:
        ctd = self.workdir / "containerd"
        cni_conf = self.workdir / "cni" / "net.d"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-jobplane.conflist").write_text(
            json.dumps(self.network.cni_config(self.workdir / "cni" / "ipam"))
        )
        pause_ref = image_builds.pause_image().ref
        # Debugging aid: JOBPLANE_RUNC=/path/to/wrapper runs every pod container through a wrapper of runc.
        wrapper = os.environ.get("JOBPLANE_RUNC", "")
        runc_binary = f'\n        BinaryName = "{wrapper}"' if wrapper else ""
        config = f"""
version = 2
root = "{ctd}/root"
state = "{ctd}/state"
# The opt plugin would install into /opt/containerd on the host.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_ref}"
  # Pod network namespaces are bind-mounted under our state dir rather than /var/run/netns.
  netns_mounts_under_state_dir = true
  # This host may not lower oom_score_adj (runc fails with "Permission denied" for the sandbox's -998); clamp
  # container scores to containerd's own instead.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{ctd}/runc"{runc_binary}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
"""
        (self.workdir / "containerd.toml").write_text(config)
        self._spawn("containerd", self.bins.containerd, [f"--config={self.workdir / 'containerd.toml'}"])

    def ctr(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bins.ctr), f"--address={self.containerd_socket}", "--namespace=k8s.io", *args],
            check=True,
            text=True,
            capture_output=True,
            **kwargs,
        )

    def _import_image(self, image: image_builds.Image) -> None:
        if image.ref in self.ctr("images", "ls", "-q").stdout.split():
            return
        log.info("importing %s into the node's containerd", image.ref)
        self.ctr("images", "import", "--snapshotter=overlayfs", str(image.archive))

    def stop_kubelet(self) -> None:
        """Stop the real node's kubelet and leave its containers running: the node is lost to the control
        plane, which hears from it no more (for tests of a cluster of their own)."""
        for record in self.state.processes:
            if record.name == "kubelet":
                _stop_pid(record)

    def import_image(self, image: image_builds.Image) -> str:
        """Make image available to pods on the real node; returns the reference to put in a pod spec."""
        self._import_image(image)
        return image.ref

    def _start_kubelet(self) -> None:
        kdir = self.workdir / "kubelet"
        kdir.mkdir(exist_ok=True)
        for h in _cgroup_hierarchies():
            # The kubelet requires its cgroup root to exist; a per-cluster root keeps two clusters' pods
            # apart.
            (h / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
        self.kubelet_port = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "127.0.0.1",
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "tlsCertFile": str(self.kubelet_serving.cert),
            "tlsPrivateKeyFile": str(self.kubelet_serving.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.ca.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            # This host has no systemd, swap may be on, and it runs cgroup v1.
            "failSwapOn": False,
            "failCgroupV1": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.workdir / "pod-logs"),
            "volumePluginDir": str(kdir / "volume-plugins"),
            # A shared build machine: never garbage-collect our imported images or evict pods for disk
            # pressure.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.inodesFree": "1%",
            },
            "evictionPressureTransitionPeriod": "5s",
            "serializeImagePulls": False,
            "resolvConf": "/etc/resolv.conf",
            # CoreDNS on the host's bridge address (see _start_coredns).
            "clusterDNS": [self.network.gateway_ip],
            "clusterDomain": network.CLUSTER_DOMAIN,
            "nodeStatusReportFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "5s",
            "fileCheckFrequency": "5s",
            "shutdownGracePeriod": "0s",
            "localStorageCapacityIsolation": True,
        }
        (self.workdir / "kubelet.json").write_text(json.dumps(config, indent=2))
        self._spawn(
            "kubelet",
            self.bins.kubelet,
            [
                f"--config={self.workdir / 'kubelet.json'}",
                f"--kubeconfig={self.workdir / 'node.kubeconfig'}",
                f"--root-dir={kdir}",
                f"--cert-dir={kdir / 'pki'}",
                f"--hostname-override={REAL_NODE}",
                "--node-labels=pool=default,jobplane.io/node=real",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self) -> None:
        """kube-proxy in the router namespace: its iptables rules stay out of the host's (see NOTES.md)."""
        config = self.network.kube_proxy_config(self.workdir / "kube-proxy.kubeconfig", REAL_NODE)
        (self.workdir / "kube-proxy.json").write_text(json.dumps(config, indent=2))
        self._spawn(
            "kube-proxy",
            self.bins.kube_proxy,
            [f"--config={self.workdir / 'kube-proxy.json'}", "--v=1"],
            netns=self.network.netns_path,
        )

    def _start_coredns(self) -> None:
        """CoreDNS as a host process on the bridge's gateway address, serving cluster.local from the apiserver
        under its own identity (read-only RBAC)."""
        self.kubectl("apply", "-f", "-", input=json.dumps(network.COREDNS_RBAC))
        corefile = self.workdir / "Corefile"
        corefile.write_text(self.network.corefile(self.workdir / "coredns.kubeconfig"))
        self._spawn("coredns", self.bins.coredns, [f"-conf={corefile}"])

    # -- kwok node pools -------------------------------------------------------------------------------------

    def _create_kwok_nodes(self) -> None:
        def node(
            name: str, pool: str, capacity: dict[str, str], taints: list[dict[str, str]]
        ) -> dict[str, Any]:
            return {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        KWOK_NODE_LABEL: "true",
                        "type": "kwok",
                        "pool": pool,
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                },
                "spec": {"taints": taints},
                "status": {"capacity": capacity, "allocatable": capacity},
            }

        base = {"cpu": "32", "memory": "128Gi", "pods": "110"}
        nodes = [node(f"kwok-batch-{i}", "batch", base, []) for i in range(2)]
        nodes += [
            node(f"kwok-gpu-{i}", "gpu", {**base, "nvidia.com/gpu": "4"}, [GPU_TAINT]) for i in range(2)
        ]
        self.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})
        )

    def _start_kwok(self) -> None:
        self._spawn(
            "kwok",
            self.bins.kwok,
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={KWOK_STAGES}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-label-selector={KWOK_NODE_LABEL}=true",
                "--cidr=10.250.0.0/16",
                "--node-ip=10.250.255.1",
                "--node-lease-duration-seconds=40",
                # kwok serves metrics/debug endpoints; keep them on loopback with a free port.
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )

    def _wait_ready(self, timeout: float) -> None:
        wanted = ([REAL_NODE] if self.node else []) + (
            ["kwok-batch-0", "kwok-batch-1", "kwok-gpu-0", "kwok-gpu-1"] if self.kwok else []
        )

        def nodes_ready() -> bool:
            self._check_alive()
            items = self.get_json("nodes")["items"]
            ready = {
                n["metadata"]["name"]
                for n in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])
                )
                and not any(t["key"].startswith("node.kubernetes.io/") for t in n["spec"].get("taints", []))
            }
            return set(wanted) <= ready

        wait_for(f"nodes {wanted} Ready and untainted", nodes_ready, timeout=timeout, interval=0.5)
        if self.node:
            wait_for("kube-proxy's kubernetes Service rules", self.network.kube_proxy_synced, timeout=30)
        # Pods are rejected until the serviceaccount controller has made the namespace's default account.
        wait_for(
            "default service account",
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0
            ),
            timeout=timeout,
        )

    # -- clients ---------------------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bins.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, text=True, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def memory_rss_mib(self) -> dict[str, float]:
        """Resident memory of each cluster process (for the notes; containers excluded)."""
        out = {}
        for rec in self.state.processes:
            try:
                status = Path(f"/proc/{rec.pid}/status").read_text()
            except OSError:
                continue
            rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            out[rec.name] = round(rss / 1024, 1)
        return out


_CLUSTER_PROCESSES = (
    "kubelet", "kube-proxy", "coredns", "kwok", "kube-scheduler", "kube-controller-manager", "containerd",
    "kube-apiserver", "etcd",
)  # fmt: skip


def teardown(state: ClusterState, *, keep_workdir: bool = False) -> None:
    """Stop a cluster from its recorded state: kubelet, containers, daemons, mounts, cgroups, files."""
    workdir = state.workdir
    procs = {p.name: p for p in state.processes}
    # Processes others added to the cluster (tests.stack's admission webhook) go first, while the control
    # plane they talk to is still up; nothing else would stop them (their command lines do not name the
    # work dir), and they would outlive the test run.
    for name, record in procs.items():
        if name not in _CLUSTER_PROCESSES:
            _stop_pid(record)
    # The kubelet goes first so it does not restart the containers removed below; kwok and the control plane
    # can go in any order after it.
    for name in ("kubelet", "kube-proxy", "coredns", "kwok", "kube-scheduler", "kube-controller-manager"):
        if name in procs:
            _stop_pid(procs[name])
    if state.containerd_socket and "containerd" in procs and _pid_is(procs["containerd"]):
        _remove_containers(state)
    for name in ("containerd", "kube-apiserver", "etcd"):
        if name in procs:
            _stop_pid(procs[name])
    # containerd-shim processes were started by containerd with our socket path on their command line.
    for pid in _processes_under(workdir):
        log.warning("killing leftover process %s: %s", pid, Path(f"/proc/{pid}/cmdline").read_bytes()[:200])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        wait_for("leftover processes to exit", lambda: not _processes_under(workdir), timeout=10)
    except ClusterError as exc:
        # Keep cleaning up what can be cleaned; the caller's checks (and the logs) name what stayed.
        log.error("%s", exc)
    for mount in sorted(_mounts_under(workdir), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    if state.cgroup_root:
        _remove_cgroups(state.cgroup_root)
    network.remove(state.bridge, state.netns)
    # The kubelet also links container logs into the host's /var/log/containers; drop our links.
    containers_log = Path("/var/log/containers")
    if containers_log.is_dir():
        for link in containers_log.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(workdir):
                link.unlink(missing_ok=True)
    if not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def reap_stale_clusters(base: Path = DEFAULT_BASE) -> list[str]:
    """Tear down clusters whose owning test process died without stopping them (a killed CI run)."""
    reaped = []
    for state_file in base.glob(f"jp-*/{STATE_FILE}"):
        try:
            state = ClusterState.load(state_file.parent)
        except (OSError, ValueError, TypeError):
            continue
        if state.owner_pid and not Path(f"/proc/{state.owner_pid}").exists():
            log.warning(
                "tearing down stale cluster %s (owner pid %s is gone)", state.workdir, state.owner_pid
            )
            teardown(state)
            reaped.append(state.workdir)
    return reaped


def _remove_containers(state: ClusterState) -> None:
    """Kill and delete every container and task in the node's containerd (pods and sandboxes alike)."""
    ctr = ["ctr", f"--address={state.containerd_socket}", "--namespace=k8s.io"]

    def run(*args: str) -> str:
        return subprocess.run([*ctr, *args], capture_output=True, text=True, timeout=30, check=False).stdout

    for task in run("tasks", "ls", "-q").split():
        run("tasks", "kill", "--all", "--signal", "SIGKILL", task)
    # A killed task must be reported STOPPED before containerd lets us delete it.
    deadline = time.monotonic() + 10
    while "RUNNING" in run("tasks", "ls") and time.monotonic() < deadline:
        time.sleep(0.1)
    for task in run("tasks", "ls", "-q").split():
        run("tasks", "delete", "--force", task)
    containers = run("containers", "ls", "-q").split()
    for container in containers:
        run("containers", "delete", container)
    # Killing sandboxes behind the CRI's back skips the CNI DEL that would drop libcni's result cache, which
    # lives in the host's /var/lib/cni whatever containerd's own directories are; remove our sandboxes'
    # entries.
    cache = Path("/var/lib/cni/results")
    if cache.is_dir():
        for entry in cache.iterdir():
            if any(f"-{cid}-" in entry.name for cid in containers):
                entry.unlink(missing_ok=True)


def _remove_cgroups(cgroup_root: str) -> None:
    for h in _cgroup_hierarchies():
        top = h / cgroup_root.lstrip("/")
        if not top.exists():
            continue
        # Leaves first: a cgroup directory can only be removed once it has no children.
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError as exc:
                log.warning("cannot remove cgroup %s: %s", d, exc)
        try:
            top.rmdir()
        except OSError as exc:
            log.warning("cannot remove cgroup %s: %s", top, exc)
