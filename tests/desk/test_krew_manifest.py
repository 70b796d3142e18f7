"""The krew manifest (plugins/krew/livestrat.yaml) is a valid krew Plugin, and its archive is the one this tree builds.

The rules are krew's own: the Plugin type (sigs.k8s.io/krew pkg/index/types.go: apiVersion, kind, metadata, spec with
version, shortDescription, description, caveats, homepage, platforms of uri, sha256, selector, files, license, bin)
and its validation (pkg/index/validation/validate.go ``ValidatePlugin``): apiVersion
``krew.googlecontainertools.github.com/v1alpha2``, kind ``Plugin``, a safe name (``^[\\w-]+$``, not a reserved
Windows name) equal to the file's name, a short description, a ``v``-prefixed semantic version, at least one
platform, each with a URI, a sha256 of 64 lowercase hex digits, a bin, file operations, and a selector on ``os`` and
``arch`` only that is neither missing nor empty. Where this is stricter: a field the type does not have is refused
(krew's decoder would ignore it, and with it whatever the author meant by it).
"""

from __future__ import annotations

import copy
import importlib.util
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "plugins" / "krew" / "livestrat.yaml"
SEMVER = r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}

SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
PLUGIN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "version": {"type": "string"},
                "shortDescription": {"type": "string"},
                "description": {"type": "string"},
                "caveats": {"type": "string"},
                "homepage": {"type": "string"},
                "platforms": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "uri": {"type": "string"},
                            "sha256": {"type": "string"},
                            "selector": SELECTOR,
                            "files": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                                },
                            },
                            "license": {"type": "string"},
                            "bin": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


def problems(name: str, plugin: dict) -> list[str]:
    """What krew's ValidatePlugin (and the type's fields) would refuse, [] for a valid manifest."""
    try:
        jsonschema.validate(plugin, PLUGIN)
    except jsonschema.ValidationError as exc:
        return [f"schema: {exc.message}"]
    found = []
    spec = plugin["spec"]
    if plugin["apiVersion"] != "krew.googlecontainertools.github.com/v1alpha2":
        found.append("apiVersion")
    if plugin["kind"] != "Plugin":
        found.append("kind")
    if not re.fullmatch(r"[\w-]+", name) or name.lower() in WINDOWS_RESERVED:
        found.append("unsafe name")
    if plugin["metadata"]["name"] != name:
        found.append("name differs from the file's")
    if not spec.get("shortDescription"):
        found.append("no shortDescription")
    if not spec.get("platforms"):
        found.append("no platforms")
    if not re.fullmatch(SEMVER, spec.get("version") or ""):
        found.append("version is not v-prefixed semver")
    for platform in spec.get("platforms") or []:
        if not platform.get("uri"):
            found.append("no uri")
        if not re.fullmatch(r"[a-f0-9]{64}", platform.get("sha256") or ""):
            found.append("sha256")
        if not platform.get("bin"):
            found.append("no bin")
        if not platform.get("files"):
            found.append("no files")
        selector = platform.get("selector")
        if not selector or (selector.get("matchLabels") is None and not selector.get("matchExpressions")):
            found.append("no selector")
            continue
        keys = [*(selector.get("matchLabels") or {}), *(e["key"] for e in selector.get("matchExpressions") or [])]
        if any(key not in ("os", "arch") for key in keys):
            found.append("selector key")
        if "matchLabels" in selector and not selector["matchLabels"]:
            found.append("matchLabels empty")
        if "matchExpressions" in selector and not selector["matchExpressions"]:
            found.append("matchExpressions empty")
    return found


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def archive_module():
    spec = importlib.util.spec_from_file_location("krew_archive", ROOT / "scripts" / "krew-archive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_manifest_is_a_valid_krew_plugin():
    assert problems(MANIFEST.stem, manifest()) == []


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda m: m["spec"].update(version="0.1.0"), "version is not v-prefixed semver"),
        (lambda m: m["metadata"].update(name="desk"), "name differs from the file's"),
        (lambda m: m["spec"]["platforms"][0].update(sha256="F" * 64), "sha256"),
        (lambda m: m["spec"]["platforms"][0].pop("selector"), "no selector"),
        (lambda m: m["spec"]["platforms"][0]["selector"]["matchExpressions"][0].update(key="distro"), "selector key"),
        (lambda m: m["spec"].update(platforms=[]), "no platforms"),
        (lambda m: m["spec"].update(shortDesc="typo"), "schema: Additional properties are not allowed"),
    ],
)
def test_the_checker_refuses_what_krew_refuses(break_it, problem):
    broken = copy.deepcopy(manifest())
    break_it(broken)
    assert any(found.startswith(problem) for found in problems(MANIFEST.stem, broken)), problems(MANIFEST.stem, broken)


def test_the_archive_named_is_the_one_this_tree_builds_and_holds_the_bin():
    (platform,) = manifest()["spec"]["platforms"]
    module = archive_module()
    assert platform["sha256"] == module.sha256(), "the shim changed: run scripts/krew-archive.py and update the sha256"
    assert module.archive_bytes() == module.archive_bytes()  # reproducible
    with tarfile.open(fileobj=io.BytesIO(module.archive_bytes())) as tar:
        names = tar.getnames()
        assert platform["bin"] in names and all(op["from"] in names for op in platform["files"])
        assert tar.getmember(platform["bin"]).mode & 0o111


@pytest.mark.slow  # runs the shim
def test_the_shim_runs_the_installed_plugin(tmp_path):
    shim = ROOT / "plugins" / "krew" / "kubectl-livestrat"
    env = dict(os.environ, LIVESTRAT_PYTHON=sys.executable)
    ran = subprocess.run([str(shim), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "kill-switch" in ran.stdout, ran.stderr
    env = dict(os.environ, LIVESTRAT_PYTHON="", PATH=str(tmp_path))  # no python at all
    ran = subprocess.run(["/bin/sh", str(shim)], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1 and "pip install 'livestrat[desk,runtime]'" in ran.stderr
