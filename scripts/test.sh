#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then lint, types, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

log "host packages"
bash scripts/setup-host.sh

log "python environment"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'

log "lint, types and import boundaries"
.venv/bin/ruff check .
.venv/bin/ruff format --check jobs runtime store crds operator api tests bench
.venv/bin/mypy
.venv/bin/lint-imports

log "test cluster binaries (cached in ~/.cache/jobplane/bin)"
bash tests/cluster/build-bins.sh

log "test images (cached in ~/.cache/jobplane/images)"
.venv/bin/python -m tests.cluster images

log "tests"
exec .venv/bin/pytest "$@"
