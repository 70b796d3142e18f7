#!/bin/sh
# ensure-prometheus.sh TOOLS_DIR — make sure Prometheus's `promtool` and `prometheus` are on PATH for the
# monitoring tests: tests/chart/test_alerts.py (`promtool test rules` over the chart's PrometheusRule) and
# tests/chart/test_dashboard_in_prometheus.py (a real Prometheus server scraping a runtime and the operator,
# queried with every query of the chart's Grafana dashboard).
#
# `make tools` runs it. A binary already on PATH (or in TOOLS_DIR) is used as it is. Otherwise the missing
# ones are taken out of Debian's `prometheus` package into TOOLS_DIR, without installing the package: no
# Prometheus service is set up or started on the machine (the tests start their own server on 127.0.0.1,
# with its data in a temporary directory, and stop it), and nothing outside the project is changed but
# apt's package lists (`apt-get update`, as root or via sudo -n, only when apt cannot find the package yet).
set -eu

TOOLS=${1:-.tools/bin}
log() { printf '%s\n' "ensure-prometheus: $*" >&2; }

missing=""
for tool in promtool prometheus; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$TOOLS/$tool" ]; then
        missing="$missing $tool"
    fi
done
[ -n "$missing" ] || exit 0
command -v apt-get >/dev/null 2>&1 || { log "ERROR: no$missing and no apt-get: install Prometheus ($missing on PATH)"; exit 1; }
if ! apt-cache show prometheus >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        log "ERROR: apt knows no prometheus package and there is no root to run apt-get update: install$missing"
        exit 1
    fi
    $SUDO apt-get update -qq >/dev/null
fi
log "taking$missing out of Debian's prometheus package (the package is not installed)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq prometheus >/dev/null)
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$TOOLS"
for tool in $missing; do
    cp "$work/root/usr/bin/$tool" "$TOOLS/$tool"
    "$TOOLS/$tool" --version >/dev/null
done
