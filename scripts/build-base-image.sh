#!/bin/sh
# build-base-image.sh — the images' base made from Debian's own packages, for machines that
# reach no image registry: debootstrap Debian trixie (Python 3.13, as the development
# virtualenv and requirements.lock) with python3, python3-venv and ca-certificates into a
# folder, trim it, and `docker import` it. `make images` runs it; the Dockerfile gets it as
# --build-arg BASE_IMAGE.
#
# Usage:   sh scripts/build-base-image.sh          (needs root and a Docker daemon)
#
# Environment:
#   BASE_IMAGE     the image to make (default livestrat-base:trixie); an existing one is kept
#   REBUILD_BASE=1 make it again even if it exists (to take Debian's updates)
#   DEBIAN_SUITE   default trixie
#   DEBIAN_MIRROR  the Debian archive to bootstrap from (default: the one apt on this machine
#                  is configured with, read from its sources at run time)
#
# Exit status 3: this machine cannot make it (not root, no debootstrap to be had).
set -eu

BASE_IMAGE=${BASE_IMAGE:-livestrat-base:trixie}
SUITE=${DEBIAN_SUITE:-trixie}
PACKAGES=python3,python3-venv,ca-certificates,passwd

log() { printf '%s\n' "build-base-image: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
cannot() { log "$*"; exit 3; }

if [ -z "${REBUILD_BASE:-}" ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE exists ($(docker image inspect --format '{{index .Config.Labels "io.livestrat.base.created"}}' "$BASE_IMAGE")); REBUILD_BASE=1 makes it again"
    exit 0
fi
[ "$(id -u)" = 0 ] || cannot "debootstrap needs root (this is uid $(id -u))"

# The Debian archive apt uses here: the Packages index of a release labelled "Debian" (not the
# security archive, not a third-party repository), whatever the format of the sources.
mirror_from_apt() {
    # shellcheck disable=SC2016  # $(REPO_URI) is apt's field name, not a shell expansion
    uri=$(apt-get indextargets --format '$(REPO_URI)' 'Label: Debian' 'Identifier: Packages' 2>/dev/null | head -n 1)
    if [ -z "$uri" ]; then  # lists not fetched yet: read the sources themselves
        uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' \
            | tr ' ' '\n' | grep -v -e security -e '^$' | head -n 1 || true)
    fi
    if [ -z "$uri" ]; then
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
            | grep -v security | head -n 1 || true)
    fi
    printf '%s\n' "$uri"
}

MIRROR=${DEBIAN_MIRROR:-$(mirror_from_apt)}
[ -n "$MIRROR" ] || die "no Debian archive found in apt's sources; set DEBIAN_MIRROR"

if ! command -v debootstrap >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || cannot "no debootstrap, and no apt-get to install it with"
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || cannot "apt-get update failed"
    apt-get install -y -q --no-install-recommends debootstrap >&2 || cannot "apt-get install debootstrap failed"
fi

ROOTFS=$(mktemp -d /var/tmp/livestrat-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT INT TERM

log "debootstrap $SUITE ($PACKAGES) from the Debian archive apt uses here"
if ! debootstrap --variant=minbase --components=main --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$ROOTFS.log" 2>&1; then
    tail -n 30 "$ROOTFS.log" >&2
    rm -f "$ROOTFS.log"
    die "debootstrap failed (a keyring without $SUITE's keys? apt-get install debian-archive-keyring)"
fi
rm -f "$ROOTFS.log"

python=$(chroot "$ROOTFS" python3 -c 'import platform; print(platform.python_version())')
debian=$(cat "$ROOTFS/etc/debian_version")
log "Debian $debian, Python $python; trimming"
# What a container never needs: package caches and lists (apt-get update brings them back),
# documentation, translations, logs; the host's name and resolver (Docker provides its own).
# The standard library's bytecode stays: on a read-only root filesystem Python would compile
# every module it imports from source at each start (0.3 to 0.4 s more to ready, measured).
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/var/lib/dpkg/*-old "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
    "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*
rm -f "$ROOTFS/etc/hostname"
: >"$ROOTFS/etc/resolv.conf"

created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
tar --numeric-owner -C "$ROOTFS" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . \
    | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL io.livestrat.base.created=$created io.livestrat.base.debian=$debian io.livestrat.base.python=$python" \
        --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
        - "$BASE_IMAGE" >/dev/null
log "imported $BASE_IMAGE ($(docker image inspect --format '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
