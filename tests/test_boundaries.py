"""The operator and the runtime share the API models and nothing else.

The operator image carries no NautilusTrader and the runtime image no kopf; an import
across that line would crash a pod at start, so it is caught here instead.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("strategy_operator", {"nautilus_trader", "strategy_runtime", "asyncpg", "kubernetes_asyncio", "kubernetes"}),
        ("strategy_runtime", {"kopf", "strategy_operator"}),
        ("livestrat", {"nautilus_trader", "kopf", "asyncpg"}),
    ],
)
def test_package_never_imports_the_other_side(package, forbidden):
    offenders = {
        path: sorted(name for name in names if _top(name) in forbidden)
        for path, names in imported_modules(package).items()
    }
    # livestrat.cli dispatches to both sides lazily, inside functions: allowed, but only there
    if package == "livestrat":
        offenders.pop("livestrat/cli.py", None)
        # The venue emulator reads catalogs with NautilusTrader (a tool for tests and rehearsals, started by
        # `livestrat venue-emulator`, never imported by the operator): NautilusTrader only, nothing else.
        for path in [p for p in offenders if p.startswith("livestrat/venue_emulator/")]:
            offenders[path] = [n for n in offenders[path] if _top(n) != "nautilus_trader"]
    assert {p: n for p, n in offenders.items() if n} == {}


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
@pytest.mark.parametrize(
    ("package", "forbidden"), [("strategy_operator", "nautilus_trader"), ("strategy_runtime", "kopf")]
)
def test_importing_every_module_loads_nothing_forbidden(package, forbidden):
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / package).rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(n for n in sys.modules if n.split('.')[0] == {forbidden!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_both_sides_read_the_same_models():
    for package in ("strategy_operator", "strategy_runtime"):
        users = [
            p for p, names in imported_modules(package).items() if any(n.startswith("livestrat.api") for n in names)
        ]
        assert users, f"{package} does not use livestrat.api"
