# livestrat: `make run` runs the example strategy locally, `make test` runs every test.
# Both set everything up first on a fresh machine: the virtualenv, the locked Python
# packages, and (for tests) the helm/kubectl binaries and a PostgreSQL server build.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
TOOLS  := .tools/bin
EXAMPLE ?= examples/paper-ema-cross.yaml
CHART  := charts/livestrat-operator

# The fast tier (tests/support/tiers.py): no process, PostgreSQL or operator; for the edit-test loop.
.PHONY: run test test-fast lint crds docs lock tools clean e2e-kind bench images

run: $(STAMP)
	$(BIN)/livestrat run $(EXAMPLE)

# No cluster needed: the real operator and strategy pods on a local API emulator, for kubectl (docs/demo.md).
.PHONY: demo
demo: $(STAMP)
	$(BIN)/livestrat demo

# Most of the slow tier waits (on runtimes, the venue emulator, the operator), so two workers (pytest-xdist)
# cut the wall time on two cores; TEST_WORKERS=0 runs in one process. A test file runs on one worker
# (--dist loadfile: its session fixtures, such as the image build, made once; xdist 3.8's loadgroup does
# not group under pytest 9). --durations: the slowest tests, to keep the whole run under 30 minutes.
TEST_WORKERS ?= 2
test: $(STAMP) tools
	PATH="$(CURDIR)/$(TOOLS):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-fast: $(STAMP) tools  # the chart's contract tests render with helm
	PATH="$(CURDIR)/$(TOOLS):$$PATH" $(BIN)/python -m pytest --fast -q $(PYTEST_ARGS)

lint: $(STAMP)
	@sh scripts/install-tools.sh $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint --no-color Dockerfile
	sh scripts/lint-chart.sh $(TOOLS)/helm $(CHART)

# The CRD, the admission policy's validations and the API reference are generated from the models
# (livestrat/api); the chart ships a byte-identical copy of each CRD (tests/chart/test_chart_crds.py checks).
crds: $(STAMP)
	$(BIN)/livestrat crd --write crds --policy $(CHART)/files/livestrategy-fields.yaml
	cp crds/livestrategies.livestrat.io.yaml crds/riskbudgets.livestrat.io.yaml $(CHART)/crds/
	$(BIN)/livestrat docs --output docs/api.md

docs: crds

# Re-resolve the pinned versions after changing dependencies in pyproject.toml.
# Not after $(STAMP): that installs from the lock this target is about to rewrite (a dependency just added
# to pyproject.toml would make the install fail before the lock could learn of it). uv alone is enough.
lock:
	@test -x $(BIN)/uv || { test -x $(BIN)/pip || "$$(sh scripts/find-python.sh)" -m venv $(VENV); $(BIN)/pip install --quiet uv; }
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.13 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

$(STAMP): pyproject.toml requirements.lock
	@# A venv left half-made (no pip) by an interrupted run is made again, not trusted.
	@# A venv made by another interpreter (the 3.11 of earlier releases) is made again too.
	@{ test -x $(BIN)/pip && $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; } \
		|| { rm -rf $(VENV); py=$$(sh scripts/find-python.sh) && echo "Creating $(VENV)/ with $$py" \
		     && "$$py" -m venv $(VENV); }
	@echo "Installing livestrat and its locked dependencies into $(VENV)/ (first run takes a minute)..."
	@$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[runtime,operator,desk,demo,dev]' 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@$(BIN)/livestrat --help >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

# helm and kubectl (official builds) into .tools/bin, and PostgreSQL server binaries and Prometheus's
# promtool and prometheus server (found on the machine, or taken out of the distribution's package into
# .tools/bin; no Prometheus service is installed or started: the tests start their own).
tools:
	@sh scripts/install-tools.sh $(TOOLS)
	@sh scripts/ensure-postgres.sh >/dev/null
	@sh scripts/ensure-prometheus.sh $(TOOLS)

# The operator and runtime images (scripts/build-images.sh): a Docker daemon (Debian's dockerd,
# started as root where none runs), a Debian trixie base made with debootstrap, the locked
# wheels in wheelhouse/, `docker build` with no network. Unchanged sources build nothing again.
images: $(STAMP)
	PIP="$(CURDIR)/$(BIN)/pip" bash scripts/build-images.sh

# End to end on a throwaway kind cluster (needs Docker and kind): build and load both
# images, install the chart with dev values, run the paper example until it fills, halt it.
# The images come from scripts/build-images.sh, as `make images` builds them (reused if unchanged).
e2e-kind: $(STAMP)
	@sh scripts/install-tools.sh $(TOOLS)
	PATH="$(CURDIR)/$(TOOLS):$$PATH" PIP="$(CURDIR)/$(BIN)/pip" bash scripts/e2e-kind.sh

clean:
	rm -rf $(VENV) .tools .livestrat .pytest_cache *.egg-info
	find wheelhouse -mindepth 1 ! -name README.md -delete
