#!/usr/bin/env bash
# Vendor the web UI's static assets at pinned versions from the npm registry (npm pack, no Node build):
# htmx 2, its SSE extension and Pico CSS 2. They are committed under api/jobplane_api/ui/static/vendor/
# and shipped as package data, so the UI needs no CDN at run time (clusters are often air-gapped).
# Run it only to change a version; it rewrites VENDORED.md with the versions and sha256 sums.
set -euo pipefail

HTMX=2.0.11
HTMX_SSE=2.2.4
PICO=2.1.1

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/api/jobplane_api/ui/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "htmx.org@$HTMX" "htmx-ext-sse@$HTMX_SSE" "@picocss/pico@$PICO" >/dev/null
mkdir htmx sse pico
tar -xzf "htmx.org-$HTMX.tgz" -C htmx
tar -xzf "htmx-ext-sse-$HTMX_SSE.tgz" -C sse
tar -xzf "picocss-pico-$PICO.tgz" -C pico

mkdir -p "$dest"
cp htmx/package/dist/htmx.min.js "$dest/htmx.min.js"
cp htmx/package/LICENSE "$dest/htmx.LICENSE"
cp sse/package/dist/sse.js "$dest/htmx-ext-sse.js"
cp sse/package/LICENSE "$dest/htmx-ext-sse.LICENSE"
cp pico/package/css/pico.min.css "$dest/pico.min.css"
cp pico/package/LICENSE.md "$dest/pico.LICENSE.md"

cd "$dest"
{
    echo "# Vendored web UI assets"
    echo
    echo "Fetched by \`scripts/vendor-ui-assets.sh\` with \`npm pack\` from the npm registry; do not edit by hand."
    echo
    echo "| file | package | version | sha256 |"
    echo "|---|---|---|---|"
    for entry in "htmx.min.js htmx.org $HTMX" "htmx.LICENSE htmx.org $HTMX" \
                 "htmx-ext-sse.js htmx-ext-sse $HTMX_SSE" "htmx-ext-sse.LICENSE htmx-ext-sse $HTMX_SSE" \
                 "pico.min.css @picocss/pico $PICO" "pico.LICENSE.md @picocss/pico $PICO"; do
        set -- $entry
        echo "| $1 | $2 | $3 | $(sha256sum "$1" | cut -d' ' -f1) |"
    done
} > VENDORED.md
echo "vendored htmx $HTMX, htmx-ext-sse $HTMX_SSE, pico $PICO into $dest" >&2
