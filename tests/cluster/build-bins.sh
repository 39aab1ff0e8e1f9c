#!/usr/bin/env bash
# Build the test cluster's Go binaries (Kubernetes, etcd, kwok, helm, CoreDNS, Kueue) into ~/.cache/jobplane/bin/<name>-<version>/.
#
# Idempotent: a component whose binaries are present and report the pinned version is skipped, so a warm call takes
# seconds. Versions come from the wrapper modules under tools/ (their go.mod is the single source of truth).
# Usage: tests/cluster/build-bins.sh [k8s] [etcd] [kwok] [helm] [coredns] [kueue]   (default: all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${JOBPLANE_BIN_CACHE:-$HOME/.cache/jobplane/bin}
MIN_FREE_GB=${JOBPLANE_BUILD_MIN_FREE_GB:-10}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-bins] %s\n' "$*" >&2; }

# require_version <tools-subdir> <module path>: the version the wrapper module pins.
require_version() {
    awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' \
        "$ROOT/tools/$1/go.mod"
}

check_disk() {
    local dir avail
    for dir in "$CACHE" "$(go env GOCACHE)" "$(go env GOMODCACHE)"; do
        mkdir -p "$dir"
        avail=$(df -Pk "$dir" | awk 'NR == 2 {print int($4 / 1048576)}')
        if (( avail < MIN_FREE_GB )); then
            log "only ${avail} GiB free under $dir; a cold build needs about ${MIN_FREE_GB} GiB"
            exit 1
        fi
    done
}

# up_to_date <dir> <expected substring of --version> <binary>...
# (grep without -q: -q exits at the first match, the program writing on gets SIGPIPE, and pipefail turns a present
# binary into a rebuild.)
up_to_date() {
    local dir=$1 want=$2 b; shift 2
    for b in "$@"; do
        [[ -x $dir/$b ]] || return 1
        "$dir/$b" --version 2>/dev/null | grep -F -- "$want" >/dev/null || return 1
    done
}

# build <tools-subdir> <final dir> <ldflags> <package>... : build into a temp dir, then rename, so an interrupted build
# never leaves a half-populated version directory that looks complete.
build() {
    local sub=$1 dest=$2 ldflags=$3; shift 3
    local tmp="$dest.tmp.$$" start=$SECONDS
    check_disk
    rm -rf "$tmp"; mkdir -p "$tmp"
    log "building $* ($sub) into $dest"
    (cd "$ROOT/tools/$sub" && go build -p "$(nproc)" -trimpath -tags=selinux,notest,grpcnotrace \
        -ldflags="-s -w $ldflags" -o "$tmp/" "$@")
    rm -rf "$dest"; mv "$tmp" "$dest"
    log "built $sub in $((SECONDS - start)) s"
}

build_k8s() {
    local v minor dir
    v=$(require_version k8s-bins k8s.io/kubernetes); minor=$(echo "$v" | cut -d. -f2)
    dir=$CACHE/k8s-$v
    local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
    # Without these, --version and /version report v0.0.0-master+$Format:%H$ (see hack/lib/version.sh upstream).
    local vf="-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1
        -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean
        -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z
        -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1
        -X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitTreeState=clean"
    if up_to_date "$dir" "Kubernetes $v" kube-apiserver kube-controller-manager kube-scheduler kubelet \
        && "$dir/kubectl" version --client 2>/dev/null | grep -F "$v" >/dev/null; then
        if up_to_date "$dir" "Kubernetes $v" kube-proxy; then log "k8s $v present"; return; fi
        # A cache from before kube-proxy was added: build it alone and drop it in with a rename, leaving the other
        # binaries (which running clusters may be using) in place.
        build k8s-bins "$dir.proxy" "$(echo $vf)" k8s.io/kubernetes/cmd/kube-proxy
        mv "$dir.proxy/kube-proxy" "$dir/kube-proxy"; rmdir "$dir.proxy"
        return
    fi
    build k8s-bins "$dir" "$(echo $vf)" "${bins[@]/#/k8s.io/kubernetes/cmd/}"
}

build_etcd() {
    local v dir
    v=$(require_version etcd-bin go.etcd.io/etcd/server/v3); dir=$CACHE/etcd-$v
    if up_to_date "$dir" "etcd Version: ${v#v}" etcd; then log "etcd $v present"; return; fi
    build etcd-bin "$dir" "" go.etcd.io/etcd/server/v3
    mv "$dir/server" "$dir/etcd"
}

build_kwok() {
    local v dir
    v=$(require_version kwok-bin sigs.k8s.io/kwok); dir=$CACHE/kwok-$v
    if up_to_date "$dir" "${v#v}" kwok; then log "kwok $v present"; return; fi
    build kwok-bin "$dir" "" sigs.k8s.io/kwok/cmd/kwok
}

build_helm() {
    local v kv minor dir
    v=$(require_version helm-bin helm.sh/helm/v3); dir=$CACHE/helm-$v
    # Helm reports the Kubernetes version of the cluster we test against, not the default v1.20.
    kv=$(require_version k8s-bins k8s.io/kubernetes); minor=$(echo "$kv" | cut -d. -f2)
    if [[ -x $dir/helm ]] && "$dir/helm" version --short 2>/dev/null | grep -F "$v" >/dev/null; then
        log "helm $v present"; return
    fi
    build helm-bin "$dir" "-X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
        helm.sh/helm/v3/cmd/helm
}

build_coredns() {
    local v dir
    # "-min": the plugins the Corefile uses alone (tools/coredns-bin/cmd/coredns), not the stock set.
    v=$(require_version coredns-bin github.com/coredns/coredns); dir=$CACHE/coredns-$v-min
    if up_to_date "$dir" "CoreDNS-${v#v}" coredns; then log "coredns $v present"; return; fi
    build coredns-bin "$dir" "-X github.com/coredns/coredns/coremain.GitCommit=$v" ./cmd/coredns
}

# kueue_assets <dir>: what the tests apply besides the manager, copied from the module now so that a test
# never reads GOMODCACHE (which a CI cache may not keep): CRDs, RBAC and webhook manifests.
KUEUE_ASSETS=(crds/kueue.x-k8s.io_workloads.yaml manager-role.yaml manager-secrets-role.yaml webhooks.yaml)
kueue_assets() {
    local dir=$1 mod
    mod=$(cd "$ROOT/tools/kueue-bin" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)
    mkdir -p "$dir/crds"
    cp "$mod"/config/components/crd/bases/*.yaml "$dir/crds/"
    cp "$mod/config/components/rbac/role.yaml" "$dir/manager-role.yaml"
    cp "$mod/config/components/rbac/manager_secrets_role.yaml" "$dir/manager-secrets-role.yaml"
    cp "$mod/config/components/webhook/manifests.yaml" "$dir/webhooks.yaml"
    chmod -R u+w "$dir"
}

build_kueue() {
    local v dir a
    v=$(require_version kueue-bin sigs.k8s.io/kueue); dir=$CACHE/kueue-$v
    # The manager has no --version flag (it logs its gitVersion when it starts): the version file, written
    # after the build and its assets, marks a complete directory.
    if [[ -x $dir/kueue ]] && grep -qxF "$v" "$dir/version" 2>/dev/null; then
        for a in "${KUEUE_ASSETS[@]}"; do
            [[ -s $dir/$a ]] || { log "kueue $v: copying its manifests again"; kueue_assets "$dir"; break; }
        done
        log "kueue $v present"; return
    fi
    build kueue-bin "$dir" "-X sigs.k8s.io/kueue/pkg/version.GitVersion=$v -X sigs.k8s.io/kueue/pkg/version.GitCommit=$v
        -X sigs.k8s.io/kueue/pkg/version.BuildDate=1970-01-01T00:00:00Z" sigs.k8s.io/kueue/cmd/kueue
    kueue_assets "$dir"
    echo "$v" > "$dir/version"
}

main() {
    command -v go >/dev/null || { log "go is not installed"; exit 1; }
    local start=$SECONDS parts=("$@")
    (( ${#parts[@]} )) || parts=(etcd k8s kwok helm coredns kueue)
    local p
    for p in "${parts[@]}"; do "build_$p"; done
    log "done in $((SECONDS - start)) s; versions:"
    local k8s etcd kwok helm coredns kueue
    k8s=$CACHE/k8s-$(require_version k8s-bins k8s.io/kubernetes)
    etcd=$CACHE/etcd-$(require_version etcd-bin go.etcd.io/etcd/server/v3)
    kwok=$CACHE/kwok-$(require_version kwok-bin sigs.k8s.io/kwok)
    helm=$CACHE/helm-$(require_version helm-bin helm.sh/helm/v3)
    coredns=$CACHE/coredns-$(require_version coredns-bin github.com/coredns/coredns)-min
    kueue=$CACHE/kueue-$(require_version kueue-bin sigs.k8s.io/kueue)
    for p in "${parts[@]}"; do
        case $p in
            k8s) for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
                     printf '  %-24s %s\n' "$b" "$("$k8s/$b" --version)"; done
                 printf '  %-24s %s\n' kubectl "$("$k8s/kubectl" version --client 2>/dev/null | head -1)" ;;
            etcd) printf '  %-24s %s\n' etcd "$("$etcd/etcd" --version | head -1)" ;;
            kwok) printf '  %-24s %s\n' kwok "$("$kwok/kwok" --version | head -1)" ;;
            helm) printf '  %-24s %s\n' helm "$("$helm/helm" version --short)" ;;
            coredns) printf '  %-24s %s\n' coredns "$("$coredns/coredns" -version | head -1)" ;;
            kueue) printf '  %-24s %s\n' kueue "$(cat "$kueue/version") ($(ls "$kueue/crds" | wc -l) CRDs)" ;;
        esac
    done
}

main "$@"
