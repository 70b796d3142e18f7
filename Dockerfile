# livestrat's two images, from one file (docs/install.md, "Images"):
#
#   make images                                                              # both, as below
#   docker build --target operator -t REGISTRY/livestrat-operator:0.1.0 .   # kopf, no NautilusTrader
#   docker build --target runtime  -t REGISTRY/livestrat-runtime:0.1.0 .    # NautilusTrader, no kopf
#
# Both install the project with its locked dependency versions (requirements.lock as pip
# constraints, the same file the development virtualenv is installed from) into a virtualenv
# in a build stage; the final stages copy that virtualenv onto the same base, so no build
# tools, wheels or caches ship, and run as UID 10001. Nothing needs BuildKit: the classic
# builder and BuildKit build it alike, without network access in wheelhouse mode.
#
# Build arguments:
#
#   BASE_IMAGE    every stage's base: Debian trixie with Python 3.13 (python3, python3-venv).
#                 `make images` passes livestrat-base:trixie, made on the build machine from
#                 Debian's own packages (scripts/build-base-image.sh: debootstrap, docker import),
#                 for machines that reach no image registry. The default below is the official
#                 image. It is NOT pinned by digest here: no registry is reachable from where this
#                 file is maintained, so no digest could be checked. For a release, pin it by exact
#                 version and digest, resolved where the registry is reachable, e.g.
#                   docker buildx imagetools inspect python:3.13.N-slim-trixie --format '{{json .Manifest.Digest}}'
#                 (or docker pull it and read `docker image inspect --format '{{index .RepoDigests 0}}'`),
#                 then build with --build-arg BASE_IMAGE=python:3.13.N-slim-trixie@sha256:<digest>.
#
#   INSTALL_FROM  index (default): pip installs from the package index during the build.
#                 wheelhouse: pip installs only from ./wheelhouse (no index, no network), which
#                 `make images` fills with the wheels of requirements.lock on the build machine.
ARG BASE_IMAGE=python:3.13-slim-trixie
ARG INSTALL_FROM=index

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/livestrat \
    PATH=/opt/livestrat/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A named user for UID 10001 (getpass and friends look the user up); no home, no shell.
RUN groupadd --system --gid 10001 livestrat \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin livestrat

# ---------------------------------------------------------------------------------------
# The shared build stage makes the virtualenv (and, with INSTALL_FROM=wheelhouse, its pip.conf);
# each build stage then installs in two steps: the locked dependencies (with the project's
# metadata, its packages still absent) in a layer that only a change of pyproject.toml or
# requirements.lock rebuilds, then the project itself, --no-deps. With INSTALL_FROM=wheelhouse
# the virtualenv's own pip.conf points pip at /wheelhouse alone while it is built; it is
# removed before the virtualenv is copied out.
FROM base AS build
ARG INSTALL_FROM
WORKDIR /src
COPY wheelhouse/ /wheelhouse/
COPY pyproject.toml requirements.lock ./
RUN python3 -m venv /opt/livestrat \
 && case "$INSTALL_FROM" in \
      index) ;; \
      wheelhouse) printf '[global]\nno-index = true\nfind-links = /wheelhouse\n' > /opt/livestrat/pip.conf ;; \
      *) echo "INSTALL_FROM is index or wheelhouse, not '$INSTALL_FROM'" >&2; exit 2 ;; \
    esac

FROM build AS build-operator
# Only the `operator` extra: kopf, aiohttp, prometheus-client (no Kubernetes client library: the
# operator calls the API through aiohttp, strategy_operator/kube_client.py). strategy_runtime is not even
# copied, so NautilusTrader cannot come in through it.
RUN /opt/livestrat/bin/pip install --no-cache-dir -c requirements.lock '.[operator]'
COPY livestrat/ livestrat/
COPY strategy_operator/ strategy_operator/
RUN /opt/livestrat/bin/pip install --no-cache-dir --no-deps --force-reinstall -c requirements.lock '.[operator]' \
 && /opt/livestrat/bin/pip uninstall --yes pip setuptools \
 && rm -f /opt/livestrat/pip.conf

# ---------------------------------------------------------------------------------------
# The operator: `livestrat operator`, configured by the LIVESTRAT_* environment variables
# the Helm chart sets (strategy_operator/settings.py). (Before the runtime's stages, so that
# the classic builder, which builds every stage up to its target, skips those.)
FROM base AS operator
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="livestrat-operator" \
      org.opencontainers.image.description="livestrat Kubernetes operator (kopf); no NautilusTrader" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build-operator /opt/livestrat /opt/livestrat
ENV HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["livestrat"]
CMD ["operator"]

# ---------------------------------------------------------------------------------------
FROM build AS build-runtime
RUN /opt/livestrat/bin/pip install --no-cache-dir -c requirements.lock '.[runtime]'
COPY livestrat/ livestrat/
COPY strategy_runtime/ strategy_runtime/
# pip stays in the runtime image: images with your strategies are built FROM it.
RUN /opt/livestrat/bin/pip install --no-cache-dir --no-deps --force-reinstall -c requirements.lock '.[runtime]' \
 && rm -f /opt/livestrat/pip.conf

# ---------------------------------------------------------------------------------------
# A strategy pod: `livestrat runtime` reads the configuration the operator rendered, builds
# a NautilusTrader TradingNode and serves /healthz /readyz /metrics /state on 8080.
# Add your strategies by building FROM this image (docs/install.md, "Your strategies").
FROM base AS runtime
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="livestrat-runtime" \
      org.opencontainers.image.description="livestrat strategy runtime (NautilusTrader TradingNode)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build-runtime /opt/livestrat /opt/livestrat
# The pod contract (livestrat/api/runtime_config.py): config, catalog and state directories.
RUN mkdir -p /etc/livestrat /data/catalog /var/lib/livestrat \
 && chown 10001:10001 /var/lib/livestrat
ENV HOME=/var/lib/livestrat
USER 10001:10001
WORKDIR /var/lib/livestrat
EXPOSE 8080
ENTRYPOINT ["livestrat"]
CMD ["runtime", "--config", "/etc/livestrat/runtime.json"]
