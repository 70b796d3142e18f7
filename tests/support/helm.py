"""The real ``helm`` binary, run against the project's chart.

``make test`` installs the pinned build into ``.tools/bin`` (scripts/install-tools.sh);
``helm_binary()`` takes that one first, then whatever ``helm`` is on PATH, and fails with
what to do when there is none: a chart test that silently skipped would prove nothing.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "livestrat-operator"
ENVIRONMENTS = ("dev", "staging", "prod")
RELEASE = "livestrat-operator"
RELEASE_NAMESPACE = "livestrat-system"
KUBE_VERSION = "1.34.0"


class HelmMissing(RuntimeError):
    pass


@functools.cache
def helm_binary() -> str:
    local = ROOT / ".tools" / "bin" / "helm"
    if local.is_file():
        return str(local)
    found = shutil.which("helm")
    if found:
        return found
    raise HelmMissing("no helm binary: run `make tools` (installs the pinned helm into .tools/bin) or put helm on PATH")


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def helm(*args: str) -> HelmResult:
    done = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False)
    return HelmResult(done.returncode, done.stdout, done.stderr)


def values_file(environment: str) -> Path:
    return CHART / f"values-{environment}.yaml"


def dotted(values: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}`` (lists are values)."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        flat.update(dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


# What only a site knows and values-staging.yaml / values-prod.yaml require (their install
# fails, naming each, without it): the images' digests, the API server's and the ledger's
# addresses. The file `make lint` uses too; docs/install.md shows users the same overrides.
SITE_OVERRIDES_FILE = CHART / "ci" / "site-overrides.yaml"
SITE_OVERRIDES = {
    environment: dotted(yaml.safe_load(SITE_OVERRIDES_FILE.read_text())) for environment in ("staging", "prod")
}


def value_args(environment: str | None = None, values: dict | None = None, *, site: bool = True) -> list[str]:
    """-f for an environment's values file, then --set-json for each overridden key: the
    site's overrides of that environment (unless ``site`` is false), then ``values``."""
    args = ["-f", str(values_file(environment))] if environment else []
    overrides = dict(SITE_OVERRIDES.get(environment, {})) if site and environment else {}
    overrides.update(values or {})
    for key, value in overrides.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def template_result(
    environment: str | None = None, values: dict | None = None, *extra: str, site: bool = True
) -> HelmResult:
    return helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        *value_args(environment, values, site=site),
        *extra,
    )


@functools.cache
def _render(environment: str | None, values_yaml: str) -> tuple[dict, ...]:
    result = template_result(environment, yaml.safe_load(values_yaml))
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.output}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(environment: str | None = None, values: dict | None = None) -> list[dict]:
    """The objects `helm template` renders (cached per arguments; do not mutate them)."""
    return list(_render(environment, yaml.safe_dump(values or {}, sort_keys=True)))


def render_with_images(operator_image: str, runtime_image: str, **values: object) -> list[dict]:
    """The dev release's objects with the operator and runtime images given as ``REPOSITORY:TAG``."""
    operator, runtime = operator_image.rsplit(":", 1), runtime_image.rsplit(":", 1)
    return render(
        "dev",
        {
            "image.repository": operator[0],
            "image.tag": operator[1],
            "runtime.image.repository": runtime[0],
            "runtime.image.tag": runtime[1],
            **values,
        },
    )


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def only(docs: list[dict], kind: str) -> dict:
    found = find(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def operator_env(docs: list[dict]) -> dict[str, dict]:
    """The operator container's environment, by variable name."""
    (container,) = only(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def operator_environ(docs: list[dict], pod_index: int = 0) -> dict[str, str]:
    """What `livestrat operator` finds in its environment in pod `pod_index` of the rendered StatefulSet."""
    fields = {
        "metadata.labels['apps.kubernetes.io/pod-index']": str(pod_index),
        "metadata.name": f"{RELEASE}-{pod_index}",
    }
    return {
        name: entry["value"] if "value" in entry else fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        for name, entry in operator_env(docs).items()
    }
