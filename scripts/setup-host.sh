#!/usr/bin/env bash
# Install the Debian packages the tests need (idempotent): Postgres for the results store, and what the test
# cluster's real node and local image builds need.
#
# postgresql gives the tests initdb/pg_ctl (they start their own server on a free port); curl runs the API examples
# of the docs as users type them; containerd + runc run the
# kubelet node's containers, podman builds images from Dockerfiles, debootstrap makes the base image's root
# filesystem, gcc builds the static pause binary; iproute2 makes each cluster's bridge and router network
# namespace, iptables is what kube-proxy (in that namespace) writes its Service rules with; chromium is the browser Playwright drives in the web UI's
# tests (tests/e2e/ui, through executable_path: Playwright's own browser download is not used). `apt-get update` runs only when something is
# missing, so a warm call costs a dpkg query.
set -euo pipefail

PKGS=(postgresql curl chromium containerd runc podman debootstrap containernetworking-plugins gcc libc6-dev openssl iproute2 iptables conntrack ethtool socat util-linux procps)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if (( ${#missing[@]} )); then
    echo "[setup-host] installing: ${missing[*]}" >&2
    SUDO=; (( EUID == 0 )) || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    # Another apt (unattended upgrades, a parallel setup) may hold the lock for a while: wait, not fail.
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    # --no-install-recommends keeps podman from pulling in a system-wide containerd/CNI setup we do not use.
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's containerd package enables a system service on /run/containerd; the tests run their own containerd with a
# private socket, so the system one is not needed, but leaving it alone is harmless.
echo "[setup-host] ok: $(containerd --version | awk '{print $3}') runc $(runc --version | awk 'NR==1{print $3}') podman $(podman --version | awk '{print $3}')" >&2
