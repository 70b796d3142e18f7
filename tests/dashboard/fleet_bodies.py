"""LiveStrategies as the API server returns them, their status built from the API's own status models."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, RenderableType

from livestrat.api.status import (
    Condition,
    ConditionStatus,
    Fill,
    HaltRecord,
    LiveStrategyStatus,
    Phase,
    Position,
    RiskState,
    RiskStateName,
    TradingState,
)
from tests.support.desk import example


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ago(seconds: float) -> str:
    return stamp(datetime.now(UTC) - timedelta(seconds=seconds))


def fill(trade_id: str, side: str = "BUY", quantity: str = "0.010", price: str = "43210.50") -> Fill:
    return Fill(time=ago(5), instrument="BTCUSDT.BINANCE", side=side, quantity=quantity, price=price, trade_id=trade_id)


def strategy(
    name: str,
    *,
    namespace: str = "default",
    replicas: int = 1,
    phase: Phase = Phase.RUNNING,
    heartbeat_seconds_ago: float | None = 1.0,
    trading: dict[str, Any] | None = None,
    risk: RiskState | None = None,
    conditions: list[Condition] | None = None,
    halt: HaltRecord | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The paper example (its spec: maxDailyLoss 2000, maxDrawdown 3000, maxPosition 0.05) with this status."""
    doc = example("paper-ema-cross")
    doc["metadata"] = {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"}
    doc["spec"]["replicas"] = replicas
    heartbeat = ago(heartbeat_seconds_ago) if heartbeat_seconds_ago is not None else None
    status = LiveStrategyStatus(
        phase=phase,
        message=message,
        replicas=replicas,
        conditions=conditions or [],
        halt=halt,
        trading=TradingState(node_state="Running", heartbeat=heartbeat, **(trading or {})),
        risk=risk or RiskState(state=RiskStateName.ACTIVE, daily_pnl="0 USDT", drawdown="0 USDT"),
    )
    doc["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return doc


def condition(type_: str, status: bool, reason: str, message: str = "") -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if status else ConditionStatus.FALSE,
        reason=reason,
        message=message,
        last_transition_time=ago(90),
    )


def trading_btc() -> dict[str, Any]:
    """A long position of 0.03 BTC, 12 fills, 150.25 USDT up."""
    return {
        "fills": 12,
        "positions": [
            Position(
                instrument="BTCUSDT.BINANCE",
                side="LONG",
                quantity="0.030",
                avg_price="43000.00",
                unrealized_pnl="50.25 USDT",
            )
        ],
        "realized_pnl": "100.00 USDT",
        "unrealized_pnl": "50.25 USDT",
        "total_pnl": "150.25 USDT",
        "open_orders": 1,
        "last_fill": fill("BINANCE-1-12"),
    }


def risk_halted() -> RiskState:
    return RiskState(
        state=RiskStateName.HALTED,
        reason="daily PnL -2100 USDT is below -2000 USDT",
        breached_limit="maxDailyLoss",
        breached_at=ago(60),
        daily_pnl="-2100 USDT",
        drawdown="2500 USDT",
    )


def plain(renderable: RenderableType, width: int = 160) -> str:
    """What a terminal shows of a Rich renderable, without its colours."""
    out = io.StringIO()
    Console(width=width, file=out, color_system=None).print(renderable)
    return out.getvalue()
