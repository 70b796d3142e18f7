#!/bin/sh
# ensure-docker.sh — make sure `docker` reaches a daemon; where none runs, start one from
# Debian's docker.io package (installed with apt-get if missing). `make images` runs it.
#
# Usage:   sh scripts/ensure-docker.sh
#
# Exit status:
#   0  `docker info` answers (a daemon that already ran, or the one started here)
#   3  this machine cannot have one: no daemon and not root, no apt-get, docker.io not
#      installable, or dockerd would not start (the reason on stderr; tests skip on 3)
#
# An existing daemon (Docker Desktop, a system service, $DOCKER_HOST) is always used as it
# is and never touched. Otherwise, as root, it starts
#
#   dockerd --host unix:///var/run/docker.sock --data-root $DOCKER_DATA_ROOT \
#           --bridge none --iptables=false --ip-masq=false $DOCKERD_ARGS
#
# in the background (its own session, so it outlives this script; stop it with
# kill "$(cat /var/run/docker.pid)"): listening only on its unix socket, with no default
# bridge network, no iptables rules and no addresses of its own on this machine. Containers
# run with --network host or --network none; builds with --network none (scripts/build-images.sh).
# A daemon for kind needs bridge networking: start your own, or pass DOCKERD_ARGS.
#
# Environment:
#   DOCKER_DATA_ROOT  image and container storage (default /var/lib/docker)
#   DOCKERD_LOG       the daemon's log (default /var/log/livestrat-dockerd.log)
#   DOCKERD_ARGS      more dockerd arguments (word-split)
#   DOCKER_WAIT       seconds to wait for a started daemon to answer (default 60)
set -eu

DATA_ROOT=${DOCKER_DATA_ROOT:-/var/lib/docker}
LOG=${DOCKERD_LOG:-/var/log/livestrat-dockerd.log}
WAIT=${DOCKER_WAIT:-60}
SOCKET=/var/run/docker.sock

log() { printf '%s\n' "ensure-docker: $*" >&2; }
cannot() { log "$*"; exit 3; }

answers() { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }

if answers; then
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix://$SOCKET" ]; then
    cannot "DOCKER_HOST=$DOCKER_HOST does not answer (docker info failed); not starting a daemon for it"
fi
[ "$(id -u)" = 0 ] || cannot "no Docker daemon answers and starting one needs root (this is uid $(id -u))"

if ! command -v dockerd >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || cannot "no dockerd, and no apt-get to install Debian's docker.io with"
    log "no dockerd here: installing Debian's docker.io package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || cannot "apt-get update failed"
    apt-get install -y -q --no-install-recommends docker.io >&2 || cannot "apt-get install docker.io failed"
    command -v dockerd >/dev/null 2>&1 || cannot "docker.io is installed but there is no dockerd on PATH"
fi

# A daemon that is still starting (another run started it a moment ago) is waited for, not doubled.
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) is running but does not answer yet; waiting for it"
else
    mkdir -p "$DATA_ROOT" "$(dirname "$LOG")"
    log "starting dockerd (data under $DATA_ROOT, socket $SOCKET only, log $LOG)"
    # shellcheck disable=SC2086
    setsid dockerd --host "unix://$SOCKET" --data-root "$DATA_ROOT" \
        --bridge none --iptables=false --ip-masq=false ${DOCKERD_ARGS:-} \
        >>"$LOG" 2>&1 </dev/null &
    pid=$!
fi

waited=0
while ! answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$LOG" >&2 2>/dev/null || true
        cannot "dockerd exited before it answered (log above, in $LOG)"
    fi
    if [ "$waited" -ge "$WAIT" ]; then
        tail -n 20 "$LOG" >&2 2>/dev/null || true
        cannot "dockerd (pid $pid) did not answer within ${WAIT}s"
    fi
    sleep 1
    waited=$((waited + 1))
done
log "dockerd answers (pid $pid; stop it with: kill $pid)"
