"""The real node's network: a per-cluster bridge, a router namespace holding kube-proxy's rules, and CoreDNS.

Layout for a cluster with octet n (see NOTES.md, "Pod network, Services and DNS"):

- bridge ``jp<id>`` in the host's namespace with the host's address ``10.n.0.1/24`` (the *gateway IP*): the
  apiserver listens there and CoreDNS answers there on port 53; nothing else leaves 127.0.0.1;
- network namespace ``jpr<id>`` (the *router*) with one leg on the bridge, ``10.n.0.2/24``: the pods' default
  gateway, and the host's route to the Service range ``10.n.1.0/24``. kube-proxy runs inside it, so its
  iptables rules live there, apart from the host's and from every other cluster's, and go with the namespace;
- pods get ``10.n.0.10``..``10.n.0.254`` from host-local IPAM.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLUSTER_DOMAIN = "cluster.local"
# kube-proxy's and CoreDNS's identities: the bootstrap ClusterRoleBinding system:node-proxier names the first.
KUBE_PROXY_USER = "system:kube-proxy"
COREDNS_USER = "system:coredns"
COREDNS_RBAC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": COREDNS_USER},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": COREDNS_USER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": COREDNS_USER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}],
        },
    ],
}


def _used_octets() -> set[int]:
    """Second octets of the 10/8 addresses and routes this host already has (other clusters' bridges)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    out += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=False).stdout
    return {int(m) for m in re.findall(r"\b10\.(\d+)\.\d+\.\d+", out)}


def pick_octet(cluster_id: str) -> int:
    """The n of the cluster's 10.n.0.0/24 pods and 10.n.1.0/24 Services: from its id, skipping used ones."""
    used = _used_octets()
    start = int(cluster_id[:2], 16) % 200
    for step in range(200):
        octet = (start + step) % 200 + 20
        if octet not in used:
            return octet
    raise RuntimeError("no free 10.n.0.0/16 range for the cluster's pod and Service networks")


@dataclass(frozen=True)
class NodeNetwork:
    """Names and addresses of one cluster's node network."""

    cluster_id: str
    octet: int

    @property
    def bridge(self) -> str:
        return f"jp{self.cluster_id}"

    @property
    def netns(self) -> str:
        return f"jpr{self.cluster_id}"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    @property
    def gateway_ip(self) -> str:
        """The host's address on the bridge: the apiserver's bind/advertise address and CoreDNS's."""
        return f"10.{self.octet}.0.1"

    @property
    def router_ip(self) -> str:
        return f"10.{self.octet}.0.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.{self.octet}.0.0/24"

    @property
    def service_cidr(self) -> str:
        return f"10.{self.octet}.1.0/24"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the Service range, which the apiserver gives the `kubernetes` Service."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    def create(self) -> None:
        """Bridge with the gateway IP, router namespace with a leg on it and forwarding on, the host's Service
        route through it. Before the apiserver starts, which binds the gateway IP."""
        host_leg = f"{self.netns}h"
        for cmd in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{self.gateway_ip}/24", "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
            ["ip", "netns", "add", self.netns],
            ["ip", "link", "add", host_leg, "type", "veth", "peer", "name", "eth0", "netns", self.netns],
            ["ip", "link", "set", host_leg, "master", self.bridge, "up"],
            ["ip", "-n", self.netns, "addr", "add", f"{self.router_ip}/24", "dev", "eth0"],
            ["ip", "-n", self.netns, "link", "set", "eth0", "up"],
            ["ip", "-n", self.netns, "link", "set", "lo", "up"],
            # Service traffic from the host (the apiserver calling a webhook Service, hostNetwork pods, tests)
            # goes through the router too.
            ["ip", "route", "add", self.service_cidr, "via", self.router_ip, "dev", self.bridge],
        ):
            subprocess.run(cmd, check=True, capture_output=True, text=True)
        # The router forwards between pods and the host on its one leg; it must not tell them to talk directly
        # (a redirect would skip the un-NAT of the reply).
        for key in ("ipv4/ip_forward", "ipv4/conf/all/send_redirects", "ipv4/conf/eth0/send_redirects"):
            value = "1" if key.endswith("ip_forward") else "0"
            subprocess.run(
                ["ip", "netns", "exec", self.netns, "sysctl", "-qw", f"net.{key.replace('/', '.')}={value}"],
                check=True,
                capture_output=True,
                text=True,
            )

    def cni_config(self, ipam_dir: Path) -> dict[str, Any]:
        """The bridge plugin attaches pods to our bridge (the host keeps its own address on it); their gateway
        is the router, so every Service packet passes kube-proxy's rules."""
        return {
            "cniVersion": "0.4.0",
            "name": f"jobplane-{self.cluster_id}",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [
                            [
                                {
                                    "subnet": self.pod_cidr,
                                    "rangeStart": f"10.{self.octet}.0.10",
                                    "gateway": self.router_ip,
                                }
                            ]
                        ],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(ipam_dir),
                    },
                }
            ],
        }

    def kube_proxy_config(self, kubeconfig: Path, node_name: str) -> dict[str, Any]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": node_name,
            "bindAddress": self.router_ip,
            "mode": "iptables",
            "clusterCIDR": self.pod_cidr,
            # Loopback of the router's namespace: reachable from nowhere else.
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "nodePortAddresses": [f"{self.router_ip}/32"],
            "iptables": {
                # The router has one leg: a reply from a pod endpoint must come back through it to be
                # un-NATed, so every Service connection is masqueraded to the router's address.
                "masqueradeAll": True,
                "localhostNodePorts": False,
            },
            # Zero leaves the conntrack sysctls alone: nf_conntrack_max is host-wide, not ours to change.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
                "udpTimeout": "0s",
                "udpStreamTimeout": "0s",
            },
        }

    def corefile(self, kubeconfig: Path) -> str:
        return f"""\
.:53 {{
    bind {self.gateway_ip}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} jobplane-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    forward . /etc/resolv.conf
    cache 5
}}
"""

    def kube_proxy_synced(self) -> bool:
        """kube-proxy has written the `kubernetes` Service's rules in the router namespace."""
        return self.kube_proxy_routes(self.kubernetes_service_ip)

    def kube_proxy_routes(self, cluster_ip: str) -> bool:
        """kube-proxy has written the rules that send a ClusterIP to its endpoints (only once the Service has
        a ready endpoint, and some time after). Until then the router has no route to the address and a pod's
        connect fails with "Network is unreachable"."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.netns, "iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return f"-d {cluster_ip}/32" in out


def remove(bridge: str, netns: str) -> None:
    """Delete the router namespace (kube-proxy's rules, conntrack entries and the veth pair go with it) and
    the bridge (the host's Service route goes with it)."""
    if netns and Path(f"/run/netns/{netns}").exists():
        subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)
    if bridge and Path(f"/sys/class/net/{bridge}").exists():
        subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)
