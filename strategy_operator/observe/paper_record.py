"""The paper strategy a live one is promoted from, as its LiveStrategy shows it (``spec.promotion.from``).

Plain data read from the paper LiveStrategy's body: its mode, the strategy it runs, and its track record
from its status: the runtime's figures (fills, the largest drawdown, its risk state) and the operator's
``Trading`` condition (since when it trades). Nothing here is a decision
(:mod:`strategy_operator.decide.promotion` makes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from livestrat.api.contract import RISK_HALTED_AT_ANNOTATION
from livestrat.api.promotion import BacktestAgreement
from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import ConditionStatus, ConditionType, LiveStrategyStatus, RiskStateName, own_status


def parse_time(value: str | None) -> datetime | None:
    # as observation.parse_time (which imports this module)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class PaperTrackRecord:
    name: str
    found: bool
    spec: LiveStrategySpec | None = None  # None: absent, or a spec that does not read
    trading_since: datetime | None = None  # its Trading condition is True since then
    not_trading: str = ""  # why not, when it is not trading
    fills: int = 0
    max_drawdown: str | None = None
    risk_halt: str | None = None  # a risk halt in its current run: its reason
    backtest: BacktestAgreement | None = None  # its finished replay against the backtest (its runtime's report)

    @classmethod
    def missing(cls, name: str) -> PaperTrackRecord:
        return cls(name=name, found=False)

    @classmethod
    def from_body(cls, name: str, body: Mapping[str, Any]) -> PaperTrackRecord:
        try:
            spec: LiveStrategySpec | None = LiveStrategySpec.model_validate(body.get("spec") or {})
        except ValidationError:
            spec = None
        try:
            status = LiveStrategyStatus.model_validate(own_status(body) or {})
        except ValidationError:
            status = LiveStrategyStatus()
        trading = next((c for c in status.conditions if c.type == ConditionType.TRADING), None)
        is_trading = trading is not None and trading.status == ConditionStatus.TRUE
        since = parse_time(trading.last_transition_time) if is_trading and trading is not None else None
        risk = status.risk
        halt = None
        if risk is not None and (risk.state != RiskStateName.ACTIVE or risk.breached_at):
            halt = risk.reason or f"risk state {risk.state}"
        latched = ((body.get("metadata") or {}).get("annotations") or {}).get(RISK_HALTED_AT_ANNOTATION)
        latched_at = parse_time(latched)
        # A breach the operator latched after this run began belongs to it (one before it was acknowledged).
        if halt is None and latched_at is not None and (since is None or latched_at >= since):
            halt = f"a risk breach at {latched} ({RISK_HALTED_AT_ANNOTATION})"
        why_not = (trading.message or trading.reason) if trading is not None else "no Trading condition"
        return cls(
            name=name,
            found=True,
            spec=spec,
            trading_since=since,
            not_trading="" if is_trading else why_not,
            fills=status.trading.fills if status.trading is not None else 0,
            max_drawdown=risk.max_drawdown if risk is not None else None,
            risk_halt=halt,
            backtest=status.trading.backtest if status.trading is not None else None,
        )
