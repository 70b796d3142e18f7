#!/bin/sh
# ensure-postgres.sh — make sure PostgreSQL *server* binaries (initdb, pg_ctl,
# postgres) are available for the test suite; print their bin dir on stdout.
#
# Usage:
#   PG_BIN=$(sh scripts/ensure-postgres.sh)      # e.g. /usr/lib/postgresql/15/bin
#   DRY_RUN=1 sh scripts/ensure-postgres.sh       # never installs; shows apt-get -s
#   FORCE_APT=1 DRY_RUN=1 sh ...                  # pretend nothing was found (test path)
#
# `make tools` (and so `make test`) runs it; the tests find the binaries themselves.
#
# Lookup order: $PG_BIN (if set and valid) -> initdb+pg_ctl on PATH ->
# newest /usr/lib/postgresql/<major>/bin (Debian/Ubuntu layout, not on PATH by
# default) -> apt-get install postgresql (root, or via sudo -n).
#
# The install is non-interactive and does NOT create/start the Debian default
# cluster "main" on port 5432 (createcluster.d drop-in with
# create_main_cluster = false); tests start their own throwaway server. The drop-in
# stays behind (it only stops Debian creating that default cluster on later installs);
# remove /etc/postgresql-common/createcluster.d/50-no-main-cluster.conf to undo it.
# An existing install is never touched: apt only runs when nothing is found.

set -eu

log() { printf '%s\n' "ensure-postgres: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

valid_bindir() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

find_bindir() {
    if [ -n "${PG_BIN:-}" ] && valid_bindir "$PG_BIN"; then
        printf '%s\n' "$PG_BIN"; return 0
    fi
    [ -n "${FORCE_APT:-}" ] && return 1
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        # resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb)
        d=$(dirname "$(readlink -f "$(command -v initdb)")")
        if valid_bindir "$d"; then printf '%s\n' "$d"; return 0; fi
    fi
    # newest major version first
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
        if valid_bindir "$d"; then printf '%s\n' "$d"; return 0; fi
    done
    return 1
}

if bindir=$(find_bindir); then
    log "found PostgreSQL $("$bindir/postgres" --version | sed -n 's/^postgres (PostgreSQL) \([^ ]*\).*/\1/p') in $bindir"
    printf '%s\n' "$bindir"
    exit 0
fi

log "no PostgreSQL server binaries found; installing the 'postgresql' package"
command -v apt-get >/dev/null 2>&1 || die "apt-get not available: install PostgreSQL server binaries manually and set PG_BIN"

if [ "$(id -u)" = 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
elif [ -n "${DRY_RUN:-}" ]; then
    SUDO=   # apt-get -s works unprivileged
else
    die "need root (or passwordless sudo) to apt-get install postgresql"
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"

if [ -n "${DRY_RUN:-}" ]; then
    log "DRY_RUN: simulating (apt-get install -s); nothing is changed"
    # shellcheck disable=SC2086
    apt-get install -s $APT_OPTS postgresql >&2
    exit 0
fi

# Don't let the package create + start the default cluster on :5432.
$SUDO mkdir -p /etc/postgresql-common/createcluster.d
printf 'create_main_cluster = false\n' | $SUDO tee /etc/postgresql-common/createcluster.d/50-no-main-cluster.conf >/dev/null

# Refresh package lists only if they are missing/empty (fresh container images).
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    $SUDO apt-get update -q >&2
fi
# shellcheck disable=SC2086
$SUDO apt-get install $APT_OPTS postgresql >&2 || {
    log "install failed; retrying after apt-get update"
    $SUDO apt-get update -q >&2
    # shellcheck disable=SC2086
    $SUDO apt-get install $APT_OPTS postgresql >&2
}

FORCE_APT=
bindir=$(find_bindir) || die "postgresql installed but no initdb/pg_ctl/postgres found"
log "installed PostgreSQL $("$bindir/postgres" --version | sed -n 's/^postgres (PostgreSQL) \([^ ]*\).*/\1/p') in $bindir"
printf '%s\n' "$bindir"
