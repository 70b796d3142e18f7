"""The operator and the strategy pod agree: every value both sides use is the contract's, read the same way.

- every exit code the runtime can exit with is the contract's, and the operator gives each a
  meaning and a consequence; the operator knows no code the runtime never uses;
- every node state the runtime reports is the contract's, and the operator handles each; the
  contract has no state the runtime never reports;
- neither side retypes a contract value (a file name, a content type, a label or annotation
  key, a mount path, an environment variable): a literal equal to one fails here.

The runtime is found by walking its package, not by module names, so a reorganised runtime is
checked all the same.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import strategy_runtime
from livestrat.api import contract, runtime_config
from livestrat.api.contract import ExitCode
from livestrat.api.status import (
    BUDGET_FIELDS,
    OPERATOR_FIELDS,
    RUNTIME_FIELDS,
    LiveStrategyStatus,
    NodeState,
    TradingState,
)
from strategy_operator.decide import runtime_signals

ROOT = Path(__file__).resolve().parents[2]


def sources(package: str) -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text()) for p in sorted((ROOT / package).rglob("*.py"))}


def runtime_modules() -> list[object]:
    names = [m.name for m in pkgutil.walk_packages(strategy_runtime.__path__, "strategy_runtime.")]
    return [importlib.import_module(name) for name in ["strategy_runtime", *names]]


# ------------------------------------------------------------------------------------------------
# Exit codes
# ------------------------------------------------------------------------------------------------


def test_every_exit_code_of_the_runtime_is_the_contracts():
    found = {
        f"{module.__name__}.{name}": value
        for module in runtime_modules()
        for name, value in vars(module).items()
        if name.startswith("EXIT_")
    }
    assert found, "the runtime names no exit code"
    assert {name: value for name, value in found.items() if not isinstance(value, ExitCode)} == {}
    # and the contract has no code the runtime never exits with
    assert set(found.values()) == set(ExitCode)


def test_no_exit_code_is_typed_as_a_number_in_the_runtime():
    typed = [
        f"{path}:{node.lineno}"
        for path, tree in sources("strategy_runtime").items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id.startswith("EXIT_") for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert typed == []


def test_the_operator_knows_every_exit_code_and_what_it_means():
    assert set(runtime_signals.EXIT_REASONS) == set(ExitCode)
    for code in ExitCode:
        assert code.meaning, code
    # a failure is reported with the contract's meaning; a rejected spec is InvalidSpec, not a pod failure
    assert runtime_signals.exit_failure(ExitCode.FENCED_OUT) == ("FencedOut", ExitCode.FENCED_OUT.meaning)
    assert runtime_signals.exit_failure(ExitCode.INVALID) is None and runtime_signals.rejected(ExitCode.INVALID)
    assert runtime_signals.exit_failure(ExitCode.OK) is None
    assert runtime_signals.exit_failure(137) is None  # SIGKILL: not the runtime's own code


# ------------------------------------------------------------------------------------------------
# Node states
# ------------------------------------------------------------------------------------------------


def _node_state_values(tree: ast.AST) -> list[ast.expr]:
    """Every expression the runtime assigns to a ``node_state`` (an attribute, a name, or a keyword)."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(
                (isinstance(t, ast.Attribute) and t.attr == "node_state")
                or (isinstance(t, ast.Name) and t.id == "node_state")
                for t in targets
            ):
                found.append(node.value)
        elif isinstance(node, ast.keyword) and node.arg == "node_state":
            found.append(node.value)
        elif isinstance(node, ast.Dict):
            found += [
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "nodeState"
            ]
    return found


def _states_named(value: ast.expr) -> list[str] | None:
    """The NodeState members an expression can be, or None when it is not made of them."""
    if isinstance(value, ast.IfExp):
        left, right = _states_named(value.body), _states_named(value.orelse)
        return None if left is None or right is None else left + right
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "NodeState":
        return [value.attr]
    if (
        isinstance(value, ast.Attribute | ast.Name)
        and (getattr(value, "attr", None) or getattr(value, "id", None)) == "node_state"
    ):
        return []  # passed on from another node_state
    return None


def test_every_node_state_the_runtime_reports_is_the_contracts_and_the_operator_handles_it():
    reported: set[str] = set()
    for path, tree in sources("strategy_runtime").items():
        for value in _node_state_values(tree):
            states = _states_named(value)
            assert states is not None, f"{path}:{value.lineno}: a node state not taken from NodeState"
            reported.update(states)
    assert reported == {state.name for state in NodeState}  # the runtime reports every state, and only these
    for module in runtime_modules():
        if "NodeState" in vars(module):
            assert vars(module)["NodeState"] is NodeState, module.__name__
    assert set(runtime_signals.NODE_TRADES) == set(NodeState)  # the operator handles every state, and only these
    assert [s for s in NodeState if runtime_signals.node_trades(s)] == [NodeState.RUNNING]
    assert not runtime_signals.node_trades("SomethingNewer")


def test_the_status_documents_every_node_state():
    described = TradingState.model_fields["node_state"].description or ""
    assert [state for state in NodeState if state.value not in described] == []


def test_each_status_field_has_one_writer():
    writers = [set(OPERATOR_FIELDS), set(RUNTIME_FIELDS), set(BUDGET_FIELDS)]
    assert all(a.isdisjoint(b) for i, a in enumerate(writers) for b in writers[i + 1 :])
    assert set().union(*writers) == set(LiveStrategyStatus.model_fields)


# ------------------------------------------------------------------------------------------------
# No contract value retyped on either side
# ------------------------------------------------------------------------------------------------


def _defined_strings(module: object) -> dict[str, str]:
    """The string constants a module defines itself (not the ones it imports)."""
    tree = ast.parse(Path(module.__file__).read_text())
    names = [
        t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
    ]
    return {n: vars(module)[n] for n in names if n.isupper() and isinstance(vars(module)[n], str)}


CONTRACT_VALUES = {**_defined_strings(contract), **_defined_strings(runtime_config)}


@pytest.mark.parametrize("package", ["strategy_operator", "strategy_runtime", "livestrat"])
def test_no_contract_value_is_retyped(package):
    assert {"CONFIG_FILE_NAME", "SQLITE_FILE_NAME", "MERGE_PATCH", "STRATEGY_LABEL", "ENV_LEDGER_DSN"} <= set(
        CONTRACT_VALUES
    )
    by_value = {value: name for name, value in CONTRACT_VALUES.items()}
    homes = {"livestrat/api/contract.py", "livestrat/api/runtime_config.py"}
    # The API emulator and the stand-in kubelet play Kubernetes, the other side of this contract: they spell
    # the values as Kubernetes does on purpose, so a value changed on the product's side is caught against them.
    stand_ins = "livestrat/kube_emulator/"
    retyped = [
        f"{path}:{node.lineno}: {node.value!r} is {by_value[node.value]}"
        for path, tree in sources(package).items()
        if path not in homes and not path.startswith(stand_ins)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in by_value
    ]
    assert retyped == []
