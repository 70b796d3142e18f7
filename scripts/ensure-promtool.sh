#!/bin/sh
# ensure-promtool.sh TOOLS_DIR — make sure Prometheus's `promtool` is on PATH for the alert tests
# (tests/chart/test_alerts.py: `promtool test rules` over the chart's PrometheusRule).
#
# `make tools` runs it. A promtool already on PATH (or in TOOLS_DIR) is used as it is. Otherwise
# promtool is taken out of Debian's `prometheus` package into TOOLS_DIR, without installing the
# package: no Prometheus service is set up or started on the machine, and nothing outside the
# project is changed but apt's package lists (`apt-get update`, as root or via sudo -n, only when
# apt cannot find the package yet).
set -eu

TOOLS=${1:-.tools/bin}
log() { printf '%s\n' "ensure-promtool: $*" >&2; }

if command -v promtool >/dev/null 2>&1 || [ -x "$TOOLS/promtool" ]; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || { log "ERROR: no promtool and no apt-get: install Prometheus's promtool"; exit 1; }
if ! apt-cache show prometheus >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        log "ERROR: apt knows no prometheus package and there is no root to run apt-get update: install promtool"
        exit 1
    fi
    $SUDO apt-get update -qq >/dev/null
fi
log "taking promtool out of Debian's prometheus package (the package is not installed)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq prometheus >/dev/null)
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$TOOLS"
cp "$work/root/usr/bin/promtool" "$TOOLS/promtool"
"$TOOLS/promtool" --version >/dev/null
