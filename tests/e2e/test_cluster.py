"""The local test cluster behaves like a real one: CRDs, Jobs on a real kubelet node, kwok pools, teardown."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import images
from tests.cluster.cluster import (
    REAL_NODE,
    Cluster,
    ClusterError,
    _cgroup_hierarchies,
    _mounts_under,
    _pid_is,
    _processes_under,
    wait_for,
)
from tests.cluster.helpers import (
    GPU_TOLERATION,
    apply,
    job,
    job_pods,
    terminated,
    wait_job_finished,
    wait_pod_terminated,
)

pytestmark = pytest.mark.cluster

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.e2e.jobplane.io"},
    "spec": {
        "group": "e2e.jobplane.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                        },
                    }
                },
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
            }
        ],
    },
}


def test_crd_becomes_established_and_lists_objects(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(WIDGET_CRD))
    try:
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.e2e.jobplane.io")
        widget = {
            "apiVersion": "e2e.jobplane.io/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 7},
        }
        # Discovery of a new group can lag establishment by a moment; retry the apply rather than sleep.
        wait_for(
            "widget apply",
            lambda: (
                cluster.kubectl(
                    "apply", "-n", namespace, "-f", "-", input=json.dumps(widget), check=False
                ).returncode
                == 0
            ),
            timeout=30,
        )
        out = cluster.kubectl("get", "widgets", "-n", namespace).stdout
        assert "w1" in out, out
        assert "7" in out, out
    finally:
        cluster.kubectl("delete", "crd", "widgets.e2e.jobplane.io", "--wait=false", check=False)


def test_job_runs_a_local_image_on_the_real_node(
    cluster: Cluster, namespace: str, testapp_image: str
) -> None:
    apply(cluster, namespace, job("hello", image=testapp_image))

    cond = wait_job_finished(cluster, namespace, "hello")

    assert cond["type"] == "Complete", cond
    (pod,) = job_pods(cluster, namespace, "hello")
    assert pod["spec"]["nodeName"] == REAL_NODE
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    logs = cluster.kubectl("logs", "-n", namespace, "job/hello").stdout
    assert "hello from testapp uid=10001 python=3.11" in logs, logs
    assert "six=1.17.0" in logs, "the wheelhouse package is missing from the image"


def test_exit_code_fails_pod_and_job(cluster: Cluster, namespace: str, testapp_image: str) -> None:
    apply(
        cluster,
        namespace,
        job("exit3", image=testapp_image, command=["python", "-c", "import sys; sys.exit(3)"]),
    )

    cond = wait_job_finished(cluster, namespace, "exit3")
    pod = wait_pod_terminated(cluster, namespace, "exit3")

    assert cond["type"] == "Failed", cond
    assert pod["status"]["phase"] == "Failed"
    assert terminated(pod)["exitCode"] == 3


def test_memory_limit_is_a_real_oom_kill(cluster: Cluster, namespace: str, testapp_image: str) -> None:
    # bytes * n writes every page, so the kernel must charge all 512 MiB to the container's memory cgroup.
    hog = "data = b'x' * (512 * 1024 * 1024); print(len(data))"
    limits = {"memory": "64Mi", "cpu": "500m"}
    apply(
        cluster,
        namespace,
        job(
            "oom",
            image=testapp_image,
            command=["python", "-c", hog],
            resources={"limits": limits, "requests": limits},
        ),
    )

    pod = wait_pod_terminated(cluster, namespace, "oom")

    state = terminated(pod)
    assert state["reason"] == "OOMKilled", state
    assert state["exitCode"] == 137, state
    assert wait_job_finished(cluster, namespace, "oom")["type"] == "Failed"


TERM_SCRIPT = """
import signal, sys, time
events = open('/marker/events', 'a', buffering=1)

def on_term(signum, frame):
    events.write('SIGTERM\\n')
    # Keep running: only SIGKILL, which cannot be caught, may end us after the grace period.

signal.signal(signal.SIGTERM, on_term)
events.write('started\\n')
while True:
    time.sleep(60)
"""


def test_active_deadline_sends_sigterm_before_sigkill(
    cluster: Cluster, namespace: str, testapp_image: str
) -> None:
    marker = cluster.workdir / "markers" / namespace
    marker.mkdir(parents=True)
    marker.chmod(0o777)  # the image runs as uid 10001
    apply(
        cluster,
        namespace,
        job(
            "deadline",
            image=testapp_image,
            command=["python", "-c", TERM_SCRIPT],
            active_deadline_seconds=2,
            grace_seconds=3,
            volumes=[{"name": "marker", "hostPath": {"path": str(marker), "type": "Directory"}}],
            volume_mounts=[{"name": "marker", "mountPath": "/marker"}],
        ),
    )

    cond = wait_job_finished(cluster, namespace, "deadline")
    assert cond["type"] == "Failed", cond
    assert cond["reason"] == "DeadlineExceeded", cond
    # The Job controller deletes the pod; the kubelet sends SIGTERM, then SIGKILL after the 3 s grace period.
    wait_for("the deadline pod to be gone", lambda: not job_pods(cluster, namespace, "deadline"), timeout=60)
    events = (marker / "events").read_text().split()
    assert events == ["started", "SIGTERM"], events


def test_gpu_pool_job_with_toleration_runs_on_a_kwok_gpu_node(cluster: Cluster, namespace: str) -> None:
    apply(
        cluster,
        namespace,
        job(
            "gpu",
            node_selector={"pool": "gpu"},
            tolerations=[GPU_TOLERATION],
            resources={"limits": {"nvidia.com/gpu": "1"}},
        ),
    )

    cond = wait_job_finished(cluster, namespace, "gpu")

    assert cond["type"] == "Complete", cond
    (pod,) = job_pods(cluster, namespace, "gpu")
    assert pod["spec"]["nodeName"].startswith("kwok-gpu-")


def test_gpu_pool_without_toleration_never_lands(cluster: Cluster, namespace: str) -> None:
    apply(cluster, namespace, job("no-toleration", node_selector={"pool": "gpu"}))

    def unschedulable() -> dict[str, Any] | None:
        for pod in job_pods(cluster, namespace, "no-toleration"):
            for cond in pod.get("status", {}).get("conditions", []):
                if cond["type"] == "PodScheduled" and cond["status"] == "False":
                    return pod
        return None

    pod = wait_for("the scheduler to reject the pod", unschedulable, timeout=60)
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["reason"] == "Unschedulable", cond
    assert "untolerated taint" in cond["message"], cond
    assert not pod["spec"].get("nodeName")


def test_kwok_pod_fails_on_demand_with_chosen_exit_code(cluster: Cluster, namespace: str) -> None:
    apply(
        cluster,
        namespace,
        job(
            "chaos",
            node_selector={"pool": "batch"},
            annotations={"jobplane.io/kwok-exit-code": "42", "jobplane.io/kwok-reason": "Chaos"},
        ),
    )

    pod = wait_pod_terminated(cluster, namespace, "chaos")

    assert pod["spec"]["nodeName"].startswith("kwok-batch-")
    assert pod["status"]["phase"] == "Failed"
    state = terminated(pod)
    assert (state["exitCode"], state["reason"]) == (42, "Chaos"), state
    assert wait_job_finished(cluster, namespace, "chaos")["type"] == "Failed"


def test_namespace_deletion_completes(cluster: Cluster, testapp_image: str) -> None:
    ns = f"doomed-{os.getpid()}"
    cluster.kubectl("create", "namespace", ns)
    wait_for(
        "default service account",
        lambda: cluster.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0,
        timeout=30,
    )
    # One running real container and one long-running kwok pod must both be cleaned up by the deletion.
    apply(cluster, ns, job("real", image=testapp_image, command=["sleep", "300"], grace_seconds=1))
    apply(
        cluster,
        ns,
        job("fake", node_selector={"pool": "batch"}, annotations={"jobplane.io/kwok-run-for": "10m"}),
    )
    wait_for(
        "both pods running",
        lambda: (
            len(
                [
                    p
                    for p in cluster.get_json("pods", "-n", ns)["items"]
                    if p["status"].get("phase") == "Running"
                ]
            )
            == 2
        ),
        timeout=60,
    )

    cluster.kubectl("delete", "namespace", ns, "--wait=false")

    wait_for(
        f"namespace {ns} to be gone",
        lambda: cluster.kubectl("get", "namespace", ns, check=False).returncode != 0,
        timeout=120,
        interval=0.5,
    )


SERVER = """
import http.server
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello through the Service"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", 8080), Hello).serve_forever()
"""

CLIENT = """
import json, os, socket, ssl, urllib.request
svc, ns = os.environ["SVC"], os.environ["NS"]
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
out = {
    "fqdn": socket.gethostbyname(f"{svc}.{ns}.svc.cluster.local"),
    "short": socket.gethostbyname(svc),
    "kubernetes": socket.gethostbyname("kubernetes.default.svc"),
    "body": urllib.request.urlopen(f"http://{svc}/", timeout=10).read().decode(),
}
token = open(f"{sa}/token").read()
request = urllib.request.Request(
    "https://kubernetes.default.svc/api/v1/namespaces/" + ns + "/services/" + svc,
    headers={"Authorization": "Bearer " + token},
)
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
out["service_from_api"] = json.load(urllib.request.urlopen(request, context=context, timeout=10))["spec"]
print(json.dumps(out))
"""


def test_a_bridge_pod_resolves_a_service_by_dns_and_reaches_it_and_the_apiserver_through_kube_proxy(
    cluster: Cluster, namespace: str, testapp_image: str
) -> None:
    labels = {"app": "hello"}
    server = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello", "labels": labels},
        "spec": {
            "nodeSelector": {"pool": "default"},
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": testapp_image,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", SERVER],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hello"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    # The client may read the Service through the apiserver with its own token, and nothing else.
    rbac = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-services"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read-services"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-services"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
    ]
    for obj in (server, service, *rbac):
        apply(cluster, namespace, obj)
    wait_for(
        "the hello pod ready",
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in cluster.get_json("pod", "hello", "-n", namespace)["status"].get("conditions", [])
        ),
        timeout=90,
    )
    # A ready endpoint reaches kube-proxy's rules a moment later (its sync period, longer under load); a
    # client started before that gets "Network is unreachable" from the router, as on any cluster before
    # kube-proxy syncs. Wait for the rules, so the test asserts the route and not the race.
    cluster_ip = cluster.get_json("service", "hello", "-n", namespace)["spec"]["clusterIP"]
    wait_for(
        "kube-proxy's rules for the hello Service",
        lambda: cluster.network.kube_proxy_routes(cluster_ip),
        timeout=60,
    )
    client = job("client", image=testapp_image, command=["python", "-c", CLIENT])
    pod_spec = client["spec"]["template"]["spec"]
    # The cluster's defaults, as any pod gets them: the pod network, ClusterFirst DNS, a token.
    del pod_spec["automountServiceAccountToken"]
    pod_spec["containers"][0]["env"] = [{"name": "SVC", "value": "hello"}, {"name": "NS", "value": namespace}]
    apply(cluster, namespace, client)

    pod = wait_pod_terminated(cluster, namespace, "client", timeout=120)
    logs = cluster.kubectl("logs", "-n", namespace, pod["metadata"]["name"]).stdout
    assert terminated(pod)["exitCode"] == 0, logs
    seen = json.loads(logs.strip().splitlines()[-1])

    network = cluster.network
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(network.pod_cidr)
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network(network.service_cidr)
    # CoreDNS answers the full name and the short one (the search path); kube-proxy routes the ClusterIP.
    assert seen["fqdn"] == seen["short"] == cluster_ip
    assert seen["body"] == "hello through the Service"
    # The apiserver through the `kubernetes` Service, its certificate verified against the pod's CA bundle.
    assert seen["kubernetes"] == network.kubernetes_service_ip
    assert seen["service_from_api"]["clusterIP"] == cluster_ip
    # kube-proxy took every field of its configuration (it falls back to lenient decoding on an unknown one).
    assert "strict decoding error" not in (cluster.logs / "kube-proxy.log").read_text()


def test_stopping_a_cluster_leaves_nothing_behind(cluster: Cluster) -> None:
    # A second, independent cluster, so the session's cluster keeps serving the other tests.
    other = Cluster()
    try:
        other.start()
        image = other.import_image(images.testapp_image())
        ns = "default"
        # A pod on the bridge network and one on the host network, both still running when the cluster stops.
        apply(other, ns, job("bridge", image=image, command=["sleep", "300"]))
        host_job = job("host", image=image, command=["sleep", "300"])
        host_job["spec"]["template"]["spec"]["hostNetwork"] = True
        apply(other, ns, host_job)
        wait_for(
            "both pods running",
            lambda: (
                len(
                    [
                        p
                        for p in other.get_json("pods", "-n", ns)["items"]
                        if p["status"].get("phase") == "Running"
                    ]
                )
                == 2
            ),
            timeout=90,
        )
        assert other.ctr("tasks", "ls", "-q").stdout.split(), "no container is running"
    except (ClusterError, subprocess.SubprocessError):
        other.stop()
        raise
    workdir = str(other.workdir)
    records = list(other.state.processes)

    other.stop(keep_workdir=False)

    assert not [r.name for r in records if _pid_is(r)], "cluster processes still running"
    assert not _processes_under(workdir), "processes (e.g. containerd shims) still running"
    assert not _mounts_under(workdir), "mounts left behind"
    assert not [h for h in _cgroup_hierarchies() if (h / other.cgroup_root.lstrip("/")).exists()], (
        "cgroups left behind"
    )
    assert not Path(f"/sys/class/net/{other.bridge}").exists(), "pod bridge left behind"
    # kube-proxy's rules lived in the router namespace, which is gone with them; the host's own tables hold
    # none of its chains.
    assert not Path(other.network.netns_path).exists(), "router namespace left behind"
    assert (
        other.network.service_cidr
        not in subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    )
    cni_cache = Path("/var/lib/cni/results")
    assert not [
        e for e in (cni_cache.iterdir() if cni_cache.is_dir() else []) if f"jobplane-{other.id}-" in e.name
    ], "CNI result cache entries left behind"
    assert not Path(workdir).exists()


def test_helm_installs_a_chart_and_sees_the_cluster_version(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: '>=1.34.0-0'\n"
    )
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
        "data: {kube: '{{ .Capabilities.KubeVersion.Version }}'}\n"
    )
    helm = [str(cluster.bins.helm), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace]
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "cfg"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    subprocess.run([*helm, "install", "probe", str(chart), "--wait", "--timeout=60s"], env=env, check=True)

    cm = cluster.get_json("configmap", "probe", "-n", namespace)
    assert cm["data"]["kube"] == cluster.bins.kubernetes_version
