#!/usr/bin/env bash
# build-images.sh — `make images`: the operator and runtime images, built from the Dockerfile
# with a real Docker daemon, on a base made from Debian's packages, from the same lock file
# as the development virtualenv.
#
#   1. a Docker daemon: scripts/ensure-docker.sh (uses a running one; else starts Debian's
#      dockerd as root, installing docker.io if missing)
#   2. the base: scripts/build-base-image.sh makes livestrat-base:trixie with debootstrap
#      (skipped when BASE_IMAGE names another image, e.g. the official python:3.13-slim-trixie)
#   3. the wheelhouse: every wheel requirements.lock pins for the runtime and operator extras
#      (CPython 3.13, manylinux x86_64), downloaded on this machine with the virtualenv's pip
#      into ./wheelhouse (git-ignored), again only when the lock or pyproject.toml changed
#   4. `docker build --target operator` and `--target runtime` with --build-arg BASE_IMAGE
#      and INSTALL_FROM=wheelhouse (pip in the build uses no index and no network)
#
# Each image is tagged REPO/livestrat-operator:TAG (and -runtime), and :src-HASH, HASH being a
# content hash of what goes into it (Dockerfile, .dockerignore, pyproject.toml,
# requirements.lock, the three packages' files, the base image's ID, INSTALL_FROM): when an
# image with that hash exists, nothing is built again. After a build, the two repositories
# keep their three newest src-* images.
#
# Stdout: OPERATOR_IMAGE=..., RUNTIME_IMAGE=..., BASE_IMAGE=..., SOURCE_HASH=... (also written
# to .livestrat/images.env); everything else goes to stderr.
#
# Environment:
#   IMAGE_REPOSITORY  default livestrat          IMAGE_TAG  default dev
#   BASE_IMAGE        default livestrat-base:trixie (made here when missing)
#   INSTALL_FROM      wheelhouse (default) or index (pip in the build reaches the index; no wheelhouse)
#   BUILD_NETWORK     docker build --network (default: none with the wheelhouse, the daemon's default otherwise)
#   PIP               the pip that fills the wheelhouse (default .venv/bin/pip; `make images` makes it)
#   FORCE_BUILD=1     build even when an image with the same content hash exists
#
# Exit status: 0 built or up to date; 3 no Docker daemon can be had here (ensure-docker.sh);
# anything else: a failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPO=${IMAGE_REPOSITORY:-livestrat}
TAG=${IMAGE_TAG:-dev}
LOCAL_BASE=livestrat-base:trixie
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE}
INSTALL_FROM=${INSTALL_FROM:-wheelhouse}
PIP=${PIP:-$ROOT/.venv/bin/pip}
WHEELHOUSE=$ROOT/wheelhouse
TARGETS=(operator runtime)
KEEP_BUILDS=3  # src-* builds kept per repository, the current one included
# The wheels' platform: CPython 3.13 on glibc x86_64. Trixie has glibc 2.41; pip takes one
# --platform per manylinux level it may choose from.
PYTHON_VERSION=3.13
PLATFORMS=()
for minor in $(seq 41 -1 17); do PLATFORMS+=(--platform "manylinux_2_${minor}_x86_64"); done

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }

case "$INSTALL_FROM" in wheelhouse | index) ;; *) die "INSTALL_FROM is wheelhouse or index, not $INSTALL_FROM" ;; esac

log "Docker daemon"
sh "$ROOT/scripts/ensure-docker.sh" || exit $?
docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}' >&2

log "base image $BASE_IMAGE"
if [ "$BASE_IMAGE" = "$LOCAL_BASE" ]; then
    BASE_IMAGE=$BASE_IMAGE sh "$ROOT/scripts/build-base-image.sh" || exit $?
elif ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    docker pull "$BASE_IMAGE" >&2
fi
base_id=$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")

wheelhouse_stamp=""
if [ "$INSTALL_FROM" = wheelhouse ]; then
    wheelhouse_stamp="py$PYTHON_VERSION-$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -c1-16)"
    if [ "$(cat "$WHEELHOUSE/.stamp" 2>/dev/null || true)" = "$wheelhouse_stamp" ]; then
        log "wheelhouse up to date ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels for this lock)"
    else
        [ -x "$PIP" ] || die "no pip at $PIP to fill the wheelhouse with: run \`make images\` (it makes .venv), or set PIP"
        log "wheelhouse: the locked wheels of the runtime and operator extras"
        find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' -delete 2>/dev/null || true
        rm -f "$WHEELHOUSE/.stamp"
        mkdir -p "$WHEELHOUSE"
        build_backend=$(sed -n 's/^requires = \["\([^"]*\)"\].*/\1/p' "$ROOT/pyproject.toml" | head -n 1)
        [ -n "$build_backend" ] || die "no [build-system] requires = [\"...\"] line in pyproject.toml"
        # Binary wheels only, for the images' platform rather than this machine's; the project
        # itself is built from its sources in the image (its build backend comes along).
        (cd "$ROOT" && "$PIP" download --quiet --dest "$WHEELHOUSE" --constraint requirements.lock \
            --only-binary=:all: --implementation cp --python-version "$PYTHON_VERSION" "${PLATFORMS[@]}" \
            '.[runtime,operator]' "$build_backend" 2>&1 | { grep -v '^WARNING: Location' || true; } >&2)
        printf '%s\n' "$wheelhouse_stamp" >"$WHEELHOUSE/.stamp"
        log "wheelhouse: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
    fi
fi

source_hash() {
    {
        printf 'base %s %s\ninstall-from %s %s\n' "$BASE_IMAGE" "$base_id" "$INSTALL_FROM" "$wheelhouse_stamp"
        cd "$ROOT"
        find Dockerfile .dockerignore pyproject.toml requirements.lock livestrat strategy_operator strategy_runtime \
            -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
}
HASH=$(source_hash)

network=${BUILD_NETWORK:-}
if [ -z "$network" ] && [ "$INSTALL_FROM" = wheelhouse ]; then network=none; fi
# BuildKit where the client has it (buildx); the classic builder otherwise (Debian's docker.io).
if [ -z "${DOCKER_BUILDKIT:-}" ]; then
    if docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=1; else export DOCKER_BUILDKIT=0; fi
fi

for target in "${TARGETS[@]}"; do
    image=$REPO/livestrat-$target
    if [ -z "${FORCE_BUILD:-}" ] && docker image inspect "$image:src-$HASH" >/dev/null 2>&1; then
        log "$image:src-$HASH is up to date (same Dockerfile, lock, sources and base)"
    else
        log "building $image (target $target, base $BASE_IMAGE, from the $INSTALL_FROM)"
        started=$SECONDS
        docker build --target "$target" \
            --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "INSTALL_FROM=$INSTALL_FROM" \
            --label "io.livestrat.source-hash=$HASH" \
            ${network:+--network "$network"} \
            --tag "$image:src-$HASH" "$ROOT" >&2
        log "built $image:src-$HASH in $((SECONDS - started))s"
        # Earlier builds of this repository: all but the newest few go (other checkouts on the
        # same daemon may still be using theirs), with their layers once nothing uses them.
        docker image ls --format '{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}' "$image" | grep ":src-" | sort -r \
            | cut -f2 | grep -v ":src-$HASH\$" | tail -n +"$KEEP_BUILDS" \
            | xargs -r docker image rm >/dev/null 2>&1 || true
    fi
    docker tag "$image:src-$HASH" "$image:$TAG"
done
docker image prune --force --filter "label=io.livestrat.source-hash" >/dev/null 2>&1 || true

log "images"
for target in "${TARGETS[@]}"; do
    docker image inspect --format "{{index .RepoTags 0}}  {{.Size}}" "$REPO/livestrat-$target:$TAG" \
        | awk -v t="$REPO/livestrat-$target:$TAG" '{printf "  %-40s %5.0f MB\n", t, $2/1e6}' >&2
done

mkdir -p "$ROOT/.livestrat"
{
    printf 'OPERATOR_IMAGE=%s\n' "$REPO/livestrat-operator:$TAG"
    printf 'RUNTIME_IMAGE=%s\n' "$REPO/livestrat-runtime:$TAG"
    printf 'BASE_IMAGE=%s\n' "$BASE_IMAGE"
    printf 'SOURCE_HASH=%s\n' "$HASH"
} | tee "$ROOT/.livestrat/images.env"
