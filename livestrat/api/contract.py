"""What the operator and the strategy pod must agree on, each value written once.

Both sides import these names; neither retypes a value. ``tests/api/test_contract.py`` fails
when a value is retyped on either side, when the runtime can exit with a code the operator
gives no meaning, or when it can report a node state the operator does not handle (and the
other way round).

Here:

- :class:`ExitCode`: how ``livestrat runtime`` ends, and what each code means;
- the labels and annotations on a LiveStrategy and its children that both sides (and the
  user) read: :data:`STRATEGY_LABEL`, :data:`KILL_SWITCH_ANNOTATION`, :data:`HALT_ANNOTATION`,
  :data:`RISK_ACK_ANNOTATION`, :data:`RISK_HALTED_AT_ANNOTATION`;
- the files and the content type both sides name: :data:`SQLITE_FILE_NAME`, :data:`MERGE_PATCH`.

Beside it, in the modules whose models they belong to:

- :mod:`livestrat.api.runtime_config`: the ConfigMap's ``runtime.json`` (``RuntimeConfig``,
  ``CONFIG_FILE_NAME``), the pod's mount paths and port, the Secret environment variables;
- :mod:`livestrat.api.status`: the status models both sides read and write, whose fields are
  whose (``OPERATOR_FIELDS``, ``RUNTIME_FIELDS``), and the runtime's node states (``NodeState``);
- :mod:`livestrat.api.resource`: the API's group, version, kind and plural.
"""

from __future__ import annotations

from enum import IntEnum

from livestrat.api.resource import GROUP

# ------------------------------------------------------------------------------------------------
# Exit codes of `livestrat runtime`, read by the operator from the container's last termination.
# ------------------------------------------------------------------------------------------------


class ExitCode(IntEnum):
    """How ``livestrat runtime`` ends; :attr:`meaning` says what it means, in the operator's words too."""

    OK = 0
    FAILED = 1
    INVALID = 2
    FENCED_OUT = 3
    FENCE_LOST = 4
    HALT_INCOMPLETE = 5
    HALT_OVERRAN = 70

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "the runtime halted as asked and exited",
    ExitCode.FAILED: "the strategy's node failed",
    ExitCode.INVALID: "the runtime cannot run this spec",
    ExitCode.FENCED_OUT: "another runtime holds this strategy's ledger fence",
    ExitCode.FENCE_LOST: "the runtime lost its ledger fence and stopped trading",
    ExitCode.HALT_INCOMPLETE: "the halt left orders open at a venue (or a position under haltPolicy flatten)",
    ExitCode.HALT_OVERRAN: "the halt overran its budget and the watchdog ended the process",
}

# ------------------------------------------------------------------------------------------------
# Labels and annotations.
# ------------------------------------------------------------------------------------------------

# On every child and pod of a strategy: the operator's watches select on it.
STRATEGY_LABEL = f"{GROUP}/strategy"
# On a Namespace: "true" halts every strategy in it.
KILL_SWITCH_ANNOTATION = f"{GROUP}/kill-switch"
# On a LiveStrategy: present (whatever its value, a note of who halted it and why), the strategy is halted;
# removed, it resumes. A manifest in Git does not own it, so a GitOps controller re-applying
# ``replicas: 1`` does not undo it (as CloudNativePG's ``cnpg.io/hibernation``). The kill switch sets it
# on every strategy of its namespace.
HALT_ANNOTATION = f"{GROUP}/halt"
# On a LiveStrategy, set by the user to the breach time: releases a risk halt. The operator
# passes it to the runtime (``RuntimeConfig.risk_acknowledgement``).
RISK_ACK_ANNOTATION = f"{GROUP}/risk-acknowledged"
# On a LiveStrategy, written by the operator only: the breach time of the last risk halt it saw.
# The runtime (which may write the status) cannot change it; only an acknowledgement of this
# time releases the halt.
RISK_HALTED_AT_ANNOTATION = f"{GROUP}/risk-halted-at"
# On a live LiveStrategy with spec.promotion, written by ``kubectl livestrat promote``: who asked for the
# promotion (the user's identity from a SelfSubjectReview). The operator copies it into status.promotion.
PROMOTED_BY_ANNOTATION = f"{GROUP}/promoted-by"

# On a paper twin (a LiveStrategy the operator keeps for a live one's spec.twin): the live strategy's name. The
# operator finds a live strategy's twin by it; the desk puts the two side by side.
TWIN_OF_LABEL = f"{GROUP}/twin-of"

# On a LiveStrategy, written by the operator only: ``PREFIX + BUDGET`` holds the breach time of the RiskBudget
# BUDGET that halts this member (docs/risk-budgets.md). The member halts as on its own risk breach until the
# operator removes it, once the budget's breach is acknowledged (on the RiskBudget, with RISK_ACK_ANNOTATION).
BUDGET_HALT_PREFIX = f"{GROUP}/budget-halt."

# ------------------------------------------------------------------------------------------------
# Files and wire formats.
# ------------------------------------------------------------------------------------------------

# The ledger's file in the pod's state directory when no PostgreSQL is configured.
SQLITE_FILE_NAME = "ledger.sqlite"
# Every write of either side is a JSON merge patch: the same semantics for built-in and custom
# resources (a strategic merge patch is not defined for custom resources).
MERGE_PATCH = "application/merge-patch+json"
