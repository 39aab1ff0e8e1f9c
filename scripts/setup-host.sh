#!/usr/bin/env bash
# Installs the Debian packages the tests need, only those missing (apt-get update only when needed).
set -euo pipefail

packages=(postgresql)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-host: run as root (or install ${missing[*]} yourself)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package starts a system cluster on 5432; the tests start their own on a free port instead.
echo "host packages ok: ${packages[*]}"
