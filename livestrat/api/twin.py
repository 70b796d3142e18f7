"""The paper twin's names (``LiveStrategy.spec.twin``; its model: :mod:`livestrat.api.spec`).

A paper strategy the operator keeps beside a live one.

The twin runs the live strategy's own spec in the sandbox on the same venue's public market data
(paper on a live feed), so the desk can put what the live strategy got (PnL, slippage, fill rate)
beside what the same orders would have got with simulated fills. It is an ordinary paper
LiveStrategy, ``NAME-twin``, which the operator creates, keeps equal to the live spec and deletes
(docs/promotion.md, "A paper twin").
"""

from __future__ import annotations

from livestrat.api import names

TWIN_SUFFIX = "-twin"
# The longest live strategy name that leaves room for its twin's (and every child of the twin's).
TWIN_OWNER_MAX_LENGTH = names.NAME_MAX_LENGTH - len(TWIN_SUFFIX)
TWIN_NAME_MESSAGE = (
    f"the paper twin is named NAME-twin, which must be a valid LiveStrategy name too: with spec.twin, "
    f"metadata.name may have at most {TWIN_OWNER_MAX_LENGTH} characters"
)
TWIN_NAME_RULE = f"!has(self.spec.twin) || size(self.metadata.name) <= {TWIN_OWNER_MAX_LENGTH}"


def twin_name(live_name: str) -> str:
    return f"{live_name}{TWIN_SUFFIX}"
