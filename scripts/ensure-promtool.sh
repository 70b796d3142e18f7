#!/bin/sh
# ensure-promtool.sh — make sure Prometheus's `promtool` is on PATH for the alert tests
# (tests/chart/test_alerts.py: `promtool test rules` over the chart's PrometheusRule).
#
# `make tools` runs it. promtool comes with Debian's `prometheus` package; installed with
# apt-get only when no promtool is found (root, or via sudo -n). The package's service is not
# started here (no init system in these containers; where there is one, Debian enables it:
# stop it with `systemctl disable --now prometheus` if you do not want it).
set -eu

log() { printf '%s\n' "ensure-promtool: $*" >&2; }

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    log "no promtool, and no root to install Debian's prometheus package: the alert tests will skip"
    exit 0
fi
log "installing Debian's prometheus package (for promtool)"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null 2>&1 || { log "ERROR: promtool still not found"; exit 1; }
