#!/usr/bin/env bash
# End to end on kind: the user's story on a throwaway cluster.
#
#   build both images (scripts/build-images.sh, what `make images` runs; reused when nothing
#   changed) -> create a kind cluster and load them into it -> install the chart
#   with dev values -> apply the paper example (emptyDir catalog filled with sample bars)
#   -> a misspelt field is refused at admission for every kubectl --validate level
#   -> wait until its status shows fills -> scale it to 0 -> wait for Halted and no pod
#   -> the cluster acceptance checklist (docs/operations.md, "Cluster acceptance") on a strategy
#      that keeps trading: names, orphaned StatefulSet, drain against the PodDisruptionBudget, a
#      CRD with a new defaulted field, field removal, the desk's halt and the kill switch under a
#      GitOps loop, cascades -> tear the cluster down.
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
    [ -z "${WORK:-}" ] || rm -rf "$WORK"
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
WORK=$(mktemp -d)
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

log "a misspelt field is refused at admission, whatever the client asks for (docs/install.md, Misspelt fields)"
if k get validatingadmissionpolicies -o name 2>/dev/null | grep -q -- '-fields$'; then
    typo=$(k -n "$NS" get livestrategy "$STRATEGY" -o yaml | sed '/^  risk:$/a\    maxDrawdwn: 500')
    printf '%s\n' "$typo" | grep -q '^    maxDrawdwn: 500$' || die "could not write the misspelt manifest"
    for validate in strict warn false; do
        if printf '%s\n' "$typo" | k apply --validate="$validate" --dry-run=server -f - >/dev/null 2>&1; then
            die "kubectl apply --validate=$validate accepted spec.risk.maxDrawdwn"
        fi
    done
else
    log "  no ValidatingAdmissionPolicy served (Kubernetes before 1.30): the operator refuses such a spec itself"
fi

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

# ------------------------------------------------------------------ the cluster acceptance checklist
# What docs/operations.md, "Cluster acceptance", lists and a kind cluster can show. One strategy that keeps
# trading (the example, replayed at one market minute per second) is halted, restarted, orphaned and
# deleted in the ways a cluster and a GitOps controller do it; none may halt, restart or flatten it unasked.
SLOW=e2e-slow
slow_manifest() {
    sed -e "s/^  name: $STRATEGY\$/  name: $SLOW/" -e 's/^      speed: 0 .*/      speed: 1/' "$EXAMPLE"
}
phase_of() { k -n "$NS" get livestrategy "$1" -o jsonpath='{.status.phase}' 2>/dev/null || true; }
pod_uid() { k -n "$NS" get pod "$1-0" -o jsonpath='{.metadata.uid}' 2>/dev/null || true; }
wait_phase() { # NAME PHASE [SECONDS]
    k -n "$NS" wait "livestrategy/$1" --for=jsonpath='{.status.phase}'="$2" --timeout="${3:-300}s" >/dev/null \
        || die "$1 did not reach phase $2 (it is $(phase_of "$1"))"
}
wait_ready_pod() { k -n "$NS" wait pod "$1-0" --for=condition=Ready --timeout=300s >/dev/null || die "$1-0 not ready"; }
same_pod() { # NAME UID WHAT: the pod NAME-0 is still the one with UID (neither restarted nor replaced)
    local now
    now=$(pod_uid "$1")
    [ "$now" = "$2" ] || die "$3 replaced pod $1-0 (uid $2, now ${now:-none})"
}
refused() { # WHAT FILE: the API server refuses FILE at admission (server-side dry run, no strict field validation)
    if k -n "$NS" apply --dry-run=server --validate=false -f "$2" >/dev/null 2>"$2.err"; then
        die "$1 was admitted"
    fi
    log "refused as it must be ($1): $(head -c 300 "$2.err")"
}

log "checklist: names that cannot make valid child names are refused"
slow_manifest | sed -e "s/^  name: $SLOW\$/  name: 9-lives/" >"$WORK/bad-name.yaml"
refused "a name starting with a digit" "$WORK/bad-name.yaml"

log "checklist: a trading strategy (replay at one market minute per second)"
slow_manifest >"$WORK/slow.yaml"
k -n "$NS" apply -f "$WORK/slow.yaml"
wait_phase "$SLOW" Running
wait_ready_pod "$SLOW"
uid=$(pod_uid "$SLOW")

log "checklist: the StatefulSet deleted with --cascade=orphan: recreated, and it adopts the running pod"
k -n "$NS" delete statefulset "$SLOW" --cascade=orphan
deadline=$((SECONDS + 120))
until k -n "$NS" get statefulset "$SLOW" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the StatefulSet was not recreated"
    sleep 2
done
sleep 15
same_pod "$SLOW" "$uid" "an orphaned StatefulSet"
owner=$(k -n "$NS" get pod "$SLOW-0" -o jsonpath='{.metadata.ownerReferences[0].kind}')
[ "$owner" = StatefulSet ] || die "the pod was not adopted (owner: ${owner:-none})"

log "checklist: a drain waits for a deliberate decision (PodDisruptionBudget)"
node=$(k -n "$NS" get pod "$SLOW-0" -o jsonpath='{.spec.nodeName}')
if k drain "$node" --pod-selector="livestrat.io/strategy=$SLOW" --ignore-daemonsets --delete-emptydir-data \
    --timeout=30s >/dev/null 2>&1; then
    die "the drain evicted the running strategy"
fi
k uncordon "$node" >/dev/null
same_pod "$SLOW" "$uid" "a drain"
[ "$(phase_of "$SLOW")" = Running ] || die "a drain changed the phase to $(phase_of "$SLOW")"

log "checklist: a CRD-first upgrade adding a defaulted field leaves the strategy running"
k patch crd livestrategies.livestrat.io --type json -p '[{"op":"add",
  "path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/e2eAddedField",
  "value":{"type":"string","default":"added-by-a-newer-crd"}}]'
k -n "$NS" annotate livestrategy "$SLOW" e2e/poke="$(date +%s)" --overwrite  # an event: the operator reads it again
k -n "$NS" wait "livestrategy/$SLOW" --for=jsonpath='{.status.conditions[?(@.type=="InvalidSpec")].reason}'=SpecInvalid \
    --timeout=120s >/dev/null || die "the operator did not say it cannot read a spec from a newer CRD"
same_pod "$SLOW" "$uid" "a CRD with a new defaulted field"
[ "$(phase_of "$SLOW")" = Running ] || die "the new CRD changed the phase to $(phase_of "$SLOW")"
k patch crd livestrategies.livestrat.io --type json \
    -p '[{"op":"remove","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/e2eAddedField"}]'
# The write above stored the default: it stays in the object (kept, unknown now) until removed.
k -n "$NS" patch livestrategy "$SLOW" --type json -p '[{"op":"remove","path":"/spec/e2eAddedField"}]' >/dev/null 2>&1 || true
k -n "$NS" annotate livestrategy "$SLOW" e2e/poke- >/dev/null
k -n "$NS" wait "livestrategy/$SLOW" --for=jsonpath='{.status.conditions[?(@.type=="InvalidSpec")].status}'=False \
    --timeout=120s >/dev/null || die "the spec did not read again once the CRD was put back"

log "checklist: restartNonce set restarts the pod once; removed, its annotation leaves the StatefulSet"
k -n "$NS" patch livestrategy "$SLOW" --type merge -p '{"spec":{"restartNonce":"e2e-1"}}'
deadline=$((SECONDS + 300))
while [ "$(pod_uid "$SLOW")" = "$uid" ] || [ -z "$(pod_uid "$SLOW")" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "restartNonce did not restart the pod"
    sleep 3
done
wait_ready_pod "$SLOW"
uid=$(pod_uid "$SLOW")
k -n "$NS" patch livestrategy "$SLOW" --type json -p '[{"op":"remove","path":"/spec/restartNonce"}]'
sleep 15
nonce=$(k -n "$NS" get statefulset "$SLOW" \
    -o jsonpath='{.spec.template.metadata.annotations.livestrat\.io/restart-nonce}')
[ -z "$nonce" ] || die "restartNonce was removed, but the StatefulSet still carries it ($nonce)"
same_pod "$SLOW" "$uid" "removing restartNonce"

log "checklist: the desk's halt stays put while a GitOps loop re-applies the manifest every 3 s"
(while :; do k -n "$NS" apply -f "$WORK/slow.yaml" >/dev/null 2>&1 || true; sleep 3; done) &
gitops=$!
k -n "$NS" annotate livestrategy "$SLOW" livestrat.io/halt="e2e: halted by the desk"
wait_phase "$SLOW" Halted
sleep 30
[ "$(phase_of "$SLOW")" = Halted ] || { kill "$gitops"; die "the GitOps loop resumed a halted strategy"; }
[ -z "$(pod_uid "$SLOW")" ] || { kill "$gitops"; die "a pod runs although the strategy is halted"; }
reason=$(k -n "$NS" get livestrategy "$SLOW" -o jsonpath='{.status.conditions[?(@.type=="Halted")].reason}')
[ "$reason" = HaltRequested ] || { kill "$gitops"; die "halted by the desk, but the Halted reason is '$reason'"; }
k -n "$NS" annotate livestrategy "$SLOW" livestrat.io/halt-
wait_phase "$SLOW" Running
kill "$gitops"
wait "$gitops" 2>/dev/null || true

log "checklist: the kill switch holds against the GitOps loop too"
(while :; do k -n "$NS" apply -f "$WORK/slow.yaml" >/dev/null 2>&1 || true; sleep 3; done) &
gitops=$!
k annotate namespace "$NS" livestrat.io/kill-switch=true
wait_phase "$SLOW" Halted
sleep 20
[ "$(phase_of "$SLOW")" = Halted ] || { kill "$gitops"; die "the GitOps loop undid the kill switch"; }
k annotate namespace "$NS" livestrat.io/kill-switch-
sleep 15
[ "$(phase_of "$SLOW")" = Halted ] || { kill "$gitops"; die "lifting the kill switch resumed a strategy by itself"; }
kill "$gitops"
wait "$gitops" 2>/dev/null || true

log "checklist: deleted with --cascade=orphan, a LiveStrategy of the same name takes its children back"
k -n "$NS" delete livestrategy "$SLOW" --cascade=orphan --timeout=300s
k -n "$NS" apply -f "$WORK/slow.yaml"
k -n "$NS" annotate livestrategy "$SLOW" livestrat.io/halt- >/dev/null 2>&1 || true
wait_phase "$SLOW" Running
conflicts=$(k -n "$NS" get livestrategy "$SLOW" -o jsonpath='{.status.conditions[?(@.reason=="NameConflict")].message}')
[ -z "$conflicts" ] || die "the new LiveStrategy reports a name conflict: $conflicts"

log "checklist: deleted with --cascade=foreground, nothing of it is left"
k -n "$NS" delete livestrategy "$SLOW" --cascade=foreground --timeout=300s
left=$(k -n "$NS" get statefulsets,pods,configmaps,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets \
    -l "livestrat.io/strategy=$SLOW" -o name)
[ -z "$left" ] || die "left behind after a foreground deletion: $left"

log "e2e-kind passed: $fills fills, then Halted; the cluster acceptance checklist passed"
