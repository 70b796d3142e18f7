#!/usr/bin/env bash
# End to end on kind: the user's story on a throwaway cluster.
#
#   build both images (scripts/build-images.sh, what `make images` runs; reused when nothing
#   changed) -> create a kind cluster and load them into it -> install the chart
#   with dev values -> apply the paper example (emptyDir catalog filled with sample bars)
#   -> wait until its status shows fills -> scale it to 0 -> wait for Halted and no pod
#   -> resume, halt with the livestrat.io/halt annotation, re-apply the manifest (as a GitOps
#   sync) -> still Halted, no pod -> tear the cluster down.
#
# Needs: docker (with a running daemon), kind, helm, kubectl (`make e2e-kind` puts the
# project's pinned helm and kubectl first on PATH).
#
# Environment:
#   KIND_CLUSTER     cluster name (default livestrat-e2e)
#   KIND_NODE_IMAGE  node image for `kind create cluster --image` (default: kind's own)
#   E2E_KEEP=1       keep the cluster afterwards (to look around); delete it yourself with
#                    kind delete cluster --name "$KIND_CLUSTER"
#   E2E_TIMEOUT      seconds to wait for fills (default 600)
#   BASE_IMAGE, INSTALL_FROM, PIP   passed on to scripts/build-images.sh: its default base is
#                    made with debootstrap (root, Debian); where a registry is reachable,
#                    BASE_IMAGE=python:3.13-slim-trixie (pinned by digest, docs/install.md) works
#                    anywhere
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER=${KIND_CLUSTER:-livestrat-e2e}
TAG=e2e
RELEASE=livestrat-operator
SYSTEM_NS=livestrat-system
NS=livestrat-e2e
STRATEGY=ema-cross-btc
EXAMPLE=$ROOT/examples/paper-ema-cross.yaml
CHART=$ROOT/charts/livestrat-operator
TIMEOUT=${E2E_TIMEOUT:-600}
CONTEXT=kind-$CLUSTER

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'e2e-kind: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

for tool in docker kind helm kubectl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found on PATH"
done
docker info >/dev/null 2>&1 || die "docker cannot reach a daemon (docker info failed)"

diagnose() {
    log "diagnostics"
    k get livestrategies -A -o wide || true
    k -n "$NS" describe livestrategy "$STRATEGY" || true
    k get pods -A -o wide || true
    k -n "$NS" get events --sort-by=.lastTimestamp || true
    k -n "$SYSTEM_NS" logs "statefulset/$RELEASE" --tail=200 || true
    k -n "$NS" logs -l "livestrat.io/strategy=$STRATEGY" --all-containers --tail=200 || true
}

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then diagnose; fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        log "keeping cluster $CLUSTER (E2E_KEEP=1)"
    else
        log "deleting cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    exit "$rc"
}

log "building images (scripts/build-images.sh)"
built=$(IMAGE_TAG=$TAG bash "$ROOT/scripts/build-images.sh") || die "scripts/build-images.sh failed"
OPERATOR_IMAGE=$(printf '%s\n' "$built" | sed -n 's/^OPERATOR_IMAGE=//p')
RUNTIME_IMAGE=$(printf '%s\n' "$built" | sed -n 's/^RUNTIME_IMAGE=//p')
if [ -z "$OPERATOR_IMAGE" ] || [ -z "$RUNTIME_IMAGE" ]; then die "scripts/build-images.sh named no images"; fi

log "creating kind cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    die "a kind cluster named $CLUSTER exists already; delete it or set KIND_CLUSTER"
fi
trap cleanup EXIT
kind create cluster --name "$CLUSTER" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}

log "loading the images into $CLUSTER"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$RUNTIME_IMAGE"

log "installing the chart (dev values)"
# Helm 4 takes a wait strategy; Helm 3 a bare --wait.
case "$(helm version --template '{{.Version}}')" in
    v3.*) WAIT=(--wait) ;;
    *) WAIT=(--wait=watcher) ;;
esac
helm --kube-context "$CONTEXT" install "$RELEASE" "$CHART" \
    --namespace "$SYSTEM_NS" --create-namespace \
    -f "$CHART/values-dev.yaml" \
    --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" \
    --set runtime.image.repository="${RUNTIME_IMAGE%:*}" --set runtime.image.tag="${RUNTIME_IMAGE##*:}" \
    "${WAIT[@]}" --timeout 5m
k -n "$SYSTEM_NS" rollout status "statefulset/$RELEASE" --timeout=180s
k get crd livestrategies.livestrat.io >/dev/null

log "applying the paper example in namespace $NS"
k create namespace "$NS"
k -n "$NS" apply -f "$EXAMPLE"

log "waiting up to ${TIMEOUT}s for fills"
deadline=$((SECONDS + TIMEOUT))
fills=0
while [ "$SECONDS" -lt "$deadline" ]; do
    fills=$(k -n "$NS" get livestrategy "$STRATEGY" -o jsonpath='{.status.trading.fills}' 2>/dev/null || true)
    phase=$(k -n "$NS" get livestrategy "$STRATEGY" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    printf '  phase=%s fills=%s\n' "${phase:-?}" "${fills:-0}" >&2
    if [ "${fills:-0}" -gt 0 ] 2>/dev/null; then break; fi
    case "$phase" in Invalid | Failed) die "strategy ended in phase $phase" ;; esac
    sleep 5
done
[ "${fills:-0}" -gt 0 ] 2>/dev/null || die "no fills after ${TIMEOUT}s"
k -n "$NS" get livestrategies -o wide

log "halting: scale to 0"
k -n "$NS" scale "livestrategy/$STRATEGY" --replicas=0
k -n "$NS" wait "livestrategy/$STRATEGY" --for=jsonpath='{.status.phase}'=Halted --timeout=300s
pods=$(k -n "$NS" get pods -l "livestrat.io/strategy=$STRATEGY" -o name)
[ -z "$pods" ] || die "Halted, but pods remain: $pods"
replicas=$(k -n "$NS" get livestrategy "$STRATEGY" -o jsonpath='{.status.replicas}')
[ "${replicas:-0}" = 0 ] || die "Halted, but status.replicas=$replicas"
k -n "$NS" get livestrategies -o wide

# GitOps self-heal: re-applying the manifest (replicas: 1) undoes a scale to 0, never the desk's halt.
log "resuming, then halting with the livestrat.io/halt annotation while the manifest is re-applied"
k -n "$NS" scale "livestrategy/$STRATEGY" --replicas=1
k -n "$NS" wait "livestrategy/$STRATEGY" --for=jsonpath='{.status.phase}'=Running --timeout=300s
k -n "$NS" annotate "livestrategy/$STRATEGY" livestrat.io/halt="e2e: GitOps self-heal"
k -n "$NS" wait "livestrategy/$STRATEGY" --for=jsonpath='{.status.phase}'=Halted --timeout=300s
for _ in 1 2 3; do
    k -n "$NS" apply -f "$EXAMPLE"
    sleep 5
done
reason=$(k -n "$NS" get livestrategy "$STRATEGY" -o jsonpath='{.status.conditions[?(@.type=="Halted")].reason}')
[ "$reason" = HaltRequested ] || die "re-applied under the desk's halt: Halted reason is '$reason'"
pods=$(k -n "$NS" get pods -l "livestrat.io/strategy=$STRATEGY" -o name)
[ -z "$pods" ] || die "the desk's halt did not hold a re-applied manifest: pods $pods"
k -n "$NS" get livestrategies -o wide

log "e2e-kind passed: $fills fills, then Halted (scaled, and by the desk's annotation under a re-apply)"
