"""What the operator makes of what the strategy pod reports: its exit codes and its node states.

Both are the contract's (:class:`livestrat.api.contract.ExitCode`,
:class:`livestrat.api.status.NodeState`); the tables here give each one its consequence, and
``tests/api/test_contract.py`` fails when the runtime has a code or a state missing here, or
the other way round.
"""

from __future__ import annotations

from livestrat.api.contract import ExitCode
from livestrat.api.status import NodeState

# The Ready reason of a pod whose runtime last exited with this code (phase Failed until it runs
# again); None: not a failure by itself (the kubelet starts it again). INVALID is reported as
# InvalidSpec instead: the spec must change, not the pod.
EXIT_REASONS: dict[ExitCode, str | None] = {
    ExitCode.OK: None,
    ExitCode.FAILED: "RuntimeFailed",
    ExitCode.INVALID: "StrategyRejected",
    ExitCode.FENCED_OUT: "FencedOut",
    ExitCode.FENCE_LOST: "FenceLost",
    ExitCode.HALT_INCOMPLETE: "HaltIncomplete",
    ExitCode.HALT_OVERRAN: "HaltOverran",
}

# Whether the runtime trades in this node state (the Trading condition).
NODE_TRADES: dict[NodeState, bool] = {
    NodeState.STARTING: False,
    NodeState.RUNNING: True,
    NodeState.HALTING: False,
    NodeState.STOPPED: False,
    NodeState.HALT_INCOMPLETE: False,
}


def exit_code(code: int | None) -> ExitCode | None:
    """The runtime's exit code, or None (no exit, or a code the runtime never uses: a signal's 137 or 143)."""
    return ExitCode(code) if code in EXIT_REASONS else None


def rejected(code: int | None) -> bool:
    """The runtime refused the spec (the spec must change)."""
    return exit_code(code) == ExitCode.INVALID


def exit_failure(code: int | None) -> tuple[str, str] | None:
    """(Ready reason, meaning) of an exit that fails the pod, None otherwise (also for a rejected spec)."""
    known = exit_code(code)
    if known is None or known == ExitCode.INVALID:
        return None
    reason = EXIT_REASONS[known]
    return (reason, known.meaning) if reason is not None else None


def node_trades(state: str | None) -> bool:
    """Whether the runtime reports a node that trades (an unknown state, from a newer runtime, does not)."""
    return state in NODE_TRADES and NODE_TRADES[NodeState(state)]
