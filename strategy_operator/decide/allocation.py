"""Each member's weight under a RiskBudget's ``allocation``: its fraction of every limit.

The rules (``livestrat.api.budget_spec.ALLOCATION_RULES`` describes them to users):

- ``Equal``: 1/N for each of the N members.
- ``Weights``: each member's ``allocation.weights`` entry over their sum (a member without one weighs 0).
- ``Performance``: max(minWeight, 1 + totalPnl ÷ limits.maxDrawdown) per member, from its own
  ``status.trading.totalPnl`` in the budget's currency (0 while it does not report), over their sum. A member
  that has made a drawdown's worth weighs twice an even one; one that lost it falls to minWeight.

Weights sum to 1 (or are all 0, when every explicit weight is 0). Handing each member its share
(``LiveStrategyStatus.budget``) is the share writer's; this module only computes the fractions.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from livestrat.api.budget_spec import AllocationRule, RiskBudgetSpec


def weights(spec: RiskBudgetSpec, total_pnl: Mapping[str, Decimal]) -> dict[str, float]:
    """member -> weight, for every member of ``spec``; ``total_pnl``: each member's in the budget's currency."""
    members = list(spec.members)
    allocation = spec.allocation
    if allocation.rule == AllocationRule.WEIGHTS:
        raw = {m: Decimal(str((allocation.weights or {}).get(m, 0.0))) for m in members}
    elif allocation.rule == AllocationRule.PERFORMANCE:
        scale = Decimal(str(spec.limits.max_drawdown or 1.0))
        floor = Decimal(str(allocation.min_weight))
        raw = {m: max(floor, 1 + total_pnl.get(m, Decimal(0)) / scale) for m in members}
    else:
        raw = dict.fromkeys(members, Decimal(1))
    total = sum(raw.values(), Decimal(0))
    if total <= 0:
        return dict.fromkeys(members, 0.0)
    return {m: float(w / total) for m, w in raw.items()}
