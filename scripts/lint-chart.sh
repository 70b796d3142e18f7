#!/bin/sh
# lint-chart.sh — `make lint`'s check of the Helm chart.
#
# Usage:   sh scripts/lint-chart.sh HELM CHART_DIR
#
# Runs `helm lint --strict` and `helm template` on the chart with its default values and with
# each values-*.yaml file (staging and prod with ci/site-overrides.yaml, the values only a site
# knows, without which they fail on purpose). Both, because Helm 4's lint reports a template's
# `fail` (the chart's own checks across values, templates/_validate.tpl) as INFO and passes:
# `helm template` fails on it. Exits non-zero when any of them fails, naming the values file.
set -eu

helm=$1
chart=$2
failed=0

check() {
    label=$1
    shift
    echo "==> $label"
    if ! "$helm" lint --strict "$chart" "$@"; then
        echo "lint-chart: helm lint --strict failed with $label" >&2
        failed=1
    fi
    if ! out=$("$helm" template lint "$chart" "$@" 2>&1 >/dev/null); then
        printf 'lint-chart: helm template failed with %s:\n%s\n' "$label" "$out" >&2
        failed=1
    fi
}

check "default values"
for values in "$chart"/values-*.yaml; do
    case "$values" in
        */values-staging.yaml | */values-prod.yaml)
            check "$(basename "$values")" -f "$values" -f "$chart/ci/site-overrides.yaml" ;;
        *)
            check "$(basename "$values")" -f "$values" ;;
    esac
done
exit $failed
