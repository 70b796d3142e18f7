# syntax=docker/dockerfile:1
# livestrat's two images, from one file (docs/install.md, "Images"):
#
#   docker build --target operator -t REGISTRY/livestrat-operator:0.1.0 .   # kopf, no NautilusTrader
#   docker build --target runtime  -t REGISTRY/livestrat-runtime:0.1.0 .    # NautilusTrader, no kopf
#
# Both install the project with its locked dependency versions (requirements.lock as pip
# constraints) into a virtualenv in a build stage; the final stages copy that virtualenv
# onto the same pinned base, so no build tools or caches ship, and run as UID 10001.
#
# The base is pinned by exact version and by digest. To move to a newer patch release,
# resolve its digest and change both, e.g.
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
# or override it for one build with --build-arg PYTHON_IMAGE=...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
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
FROM base AS build-operator
WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY livestrat/ livestrat/
COPY strategy_operator/ strategy_operator/
# Only the `operator` extra: kopf and the Kubernetes client. strategy_runtime is not even
# copied, so NautilusTrader cannot come in through it.
RUN python -m venv /opt/livestrat \
 && /opt/livestrat/bin/pip install --no-cache-dir -c requirements.lock '.[operator]' \
 && /opt/livestrat/bin/pip uninstall --yes pip setuptools

# ---------------------------------------------------------------------------------------
FROM base AS build-runtime
WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY livestrat/ livestrat/
COPY strategy_runtime/ strategy_runtime/
RUN python -m venv /opt/livestrat \
 && /opt/livestrat/bin/pip install --no-cache-dir -c requirements.lock '.[runtime]'

# ---------------------------------------------------------------------------------------
# The operator: `livestrat operator`, configured by the LIVESTRAT_* environment variables
# the Helm chart sets (strategy_operator/settings.py).
FROM base AS operator
LABEL org.opencontainers.image.title="livestrat-operator" \
      org.opencontainers.image.description="livestrat Kubernetes operator (kopf); no NautilusTrader" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-operator /opt/livestrat /opt/livestrat
ENV HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["livestrat"]
CMD ["operator"]

# ---------------------------------------------------------------------------------------
# A strategy pod: `livestrat runtime` reads the configuration the operator rendered, builds
# a NautilusTrader TradingNode and serves /healthz /readyz /metrics /state on 8080.
# Add your strategies by building FROM this image (docs/install.md, "Your strategies").
FROM base AS runtime
LABEL org.opencontainers.image.title="livestrat-runtime" \
      org.opencontainers.image.description="livestrat strategy runtime (NautilusTrader TradingNode)" \
      org.opencontainers.image.licenses="Apache-2.0"
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
