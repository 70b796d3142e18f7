"""What the demo prints: what runs, then what to type in another terminal (the demo's whole user interface)."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import livestrat
from livestrat.demo.examples import Example

TOOLS_KUBECTL = Path(livestrat.__file__).resolve().parents[1] / ".tools" / "bin" / "kubectl"


def kubectl_binary() -> Path | None:
    """The kubectl ``make tools`` downloaded, else one on PATH, else None."""
    if TOOLS_KUBECTL.exists():
        return TOOLS_KUBECTL
    found = shutil.which("kubectl")
    return Path(found) if found else None


def _skipped(examples: Sequence[Example]) -> list[str]:
    return [f"  skipped {e.path.name} ({e.name}): {e.skipped}" for e in examples if e.skipped]


def started(url: str, examples: Sequence[Example], refused: dict[str, str], speed: float) -> str:
    lines = [f"livestrat demo: the operator runs against a Kubernetes API emulator at {url}", ""]
    for e in examples:
        if e.document is None:
            continue
        if e.name in refused:
            lines.append(f"  refused {e.path.name} ({e.name}): {refused[e.name]}")
        elif e.replicas == 0:
            lines.append(f"  applied {e.path.name}: {e.name}, halted (replicas 0)")
        else:
            lines.append(f"  applied {e.path.name}: {e.name}, replaying its sample at {speed:g}x")
    lines.extend(_skipped(examples))
    return "\n".join(lines)


def what_to_try(kubeconfig: Path, examples: Sequence[Example], refused: dict[str, str], workdir: Path) -> str:
    applied = [e for e in examples if e.document is not None and e.name not in refused]
    running = next((e.name for e in applied if e.replicas > 0), "NAME")
    halted = next((e.name for e in applied if e.replicas == 0), None)
    kubectl = kubectl_binary()
    bins = [str(Path(sys.executable).parent)]  # kubectl finds the kubectl-livestrat plugin on PATH
    if kubectl is not None and kubectl.parent != Path(bins[0]):
        bins.append(str(kubectl.parent))
    tries = [
        ("kubectl get lstrat -w", "phase, fills, PnL: watch them change (Ctrl-C ends the watch)"),
        (f"kubectl describe lstrat {running}", "its conditions and events"),
        (f"kubectl scale lstrat {running} --replicas=0", "halt it: its haltPolicy runs, then the pod is gone"),
        (f"kubectl scale lstrat {running} --replicas=1", "and resume it"),
    ]
    if halted:
        tries.append((f"kubectl scale lstrat {halted} --replicas=1", "start the halted one"))
    tries += [
        ("kubectl get pods,statefulsets,configmaps", "what the operator made for each strategy"),
        ("kubectl livestrat desk", "the live dashboard (the kubectl-livestrat plugin)"),
    ]
    width = max(len(command) for command, _ in tries)
    lines = [
        "",
        "In another terminal:",
        f"  export KUBECONFIG={shlex.quote(str(kubeconfig.resolve()))}",
        f'  export PATH="{":".join(bins)}:$PATH"',
        *(f"  {command.ljust(width)}  # {why}" for command, why in tries),
    ]
    if kubectl is None:
        lines += [
            "",
            "kubectl is not installed: `make tools` downloads it into .tools/bin (or put a kubectl on your PATH).",
        ]
    lines += [
        "",
        f"Logs: the operator's in {workdir / 'operator.log'}, each pod's under {workdir / 'pods'}/.",
        "Ctrl-C stops the operator, the strategies and the emulator.",
    ]
    return "\n".join(lines)
