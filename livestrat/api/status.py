"""``LiveStrategy.status``: what is true now.

Three writers share the status and never touch each other's fields:
- the operator owns the workload part (`phase`, `replicas`, `selector`,
  `observedGeneration`, `podName`, `conditions`, `message`) and its halt decision (`halt`);
- the operator's RiskBudget reconciler owns the strategy's share of a budget (`budget`);
- the strategy's runtime owns `trading` and `risk`, stamped with the uid of the LiveStrategy it runs for
  (`trading.strategyUid`): a pod of an earlier object of the same name (deleted and applied again while its
  pod still ran) pushes into the new one, and :func:`own_status` leaves that out for every reader.

Status models ignore unknown fields: a reader must survive a writer that is newer than it.
Both sides read and write the status through these models (the operator its part, the runtime
its part); :data:`OPERATOR_FIELDS`, :data:`RUNTIME_FIELDS` and :data:`BUDGET_FIELDS` say which is whose.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from livestrat.api.base import ApiModel
from livestrat.api.promotion import BacktestAgreement, PromotionRecord

MONEY_EXAMPLE = "-12.50 USDT"


class StatusModel(ApiModel):
    model_config = ApiModel.model_config | ConfigDict(extra="ignore")


class Phase(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    HALTING = "Halting"
    HALTED = "Halted"
    RISK_HALTED = "RiskHalted"
    INVALID = "Invalid"
    FAILED = "Failed"


class ConditionType(StrEnum):
    READY = "Ready"
    TRADING = "Trading"
    HALTED = "Halted"
    RISK_HALTED = "RiskHalted"
    CONFIG_DRIFT = "ConfigDrift"
    INVALID_SPEC = "InvalidSpec"
    STALE = "Stale"
    DISRUPTION_BLOCKED = "DisruptionBlocked"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class NodeState(StrEnum):
    """``status.trading.nodeState``: the runtime's own view of its node."""

    STARTING = "Starting"
    RUNNING = "Running"
    HALTING = "Halting"
    STOPPED = "Stopped"
    # Stopped, but the halt left orders open at a venue (or, under flatten, a position): act on it.
    HALT_INCOMPLETE = "HaltIncomplete"


class RiskStateName(StrEnum):
    ACTIVE = "Active"
    REDUCING = "Reducing"
    HALTED = "Halted"


class Condition(StatusModel):
    """A condition in the shape of Kubernetes' metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$",
        description="Ready, Trading, Halted, RiskHalted, ConfigDrift, InvalidSpec, Stale or DisruptionBlocked.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Why, in one CamelCase word (see docs/operator.md).",
    )
    message: str = Field(default="", max_length=32768, description="Why, in words a person can act on.")
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"}, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this condition describes."
    )


class Fill(StatusModel):
    """The most recent fill."""

    time: str = Field(json_schema_extra={"format": "date-time"}, description="When it filled.")
    instrument: str = Field(description="Instrument ID.")
    side: str = Field(description="BUY or SELL.")
    quantity: str = Field(description="Filled quantity.")
    price: str = Field(description="Fill price.")
    trade_id: str = Field(description="The venue's trade ID.")


class Position(StatusModel):
    """A net position in one instrument."""

    instrument: str = Field(description="Instrument ID.")
    side: str = Field(description="LONG, SHORT or FLAT.")
    quantity: str = Field(description="Absolute net quantity.")
    avg_price: str | None = Field(default=None, description="Average entry price.")
    unrealized_pnl: str | None = Field(default=None, description="Unrealized PnL, `AMOUNT CCY`.")
    mark_price: str | None = Field(
        default=None, description="The price a close would trade at now, as unrealizedPnl is marked at."
    )
    notional: str | None = Field(
        default=None,
        description="Absolute notional at markPrice, `AMOUNT CCY`: NautilusTrader's Instrument.notional_value "
        "(quantity × markPrice × multiplier; an inverse contract's in its base currency). RiskBudgets add it up.",
    )


class ReplayProgress(StatusModel):
    """How far a paper replay has come."""

    events: int = Field(default=0, ge=0, description="Events replayed so far.")
    total: int = Field(default=0, ge=0, description="Events to replay.")
    finished: bool = Field(default=False, description="All events were replayed.")


class TradingState(StatusModel):
    """Trading state reported by the runtime."""

    fills: int = Field(
        default=0,
        ge=0,
        description="Fills recorded in the ledger under `ledgerKey`: since the strategy first ran (live), or in "
        "this run (paper: every start is a fresh simulated account replaying from the first bar).",
    )
    ledger_key: str | None = Field(
        default=None,
        description="The ledger key the fills, PnL and positions shown are those of: `namespace/name` for a live "
        "strategy (its venue account persists across restarts); `namespace/name@run-N` for a paper strategy, a "
        "new run N at every start (`livestrat fills --strategy` takes it).",
    )
    last_fill: Fill | None = Field(default=None, description="The most recent fill.")
    realized_pnl: str | None = Field(
        default=None,
        description=f"Realized PnL, e.g. `{MONEY_EXAMPLE}`, net of commissions paid in its currency: recomputed "
        "from the fills the ledger holds for this strategy (a live strategy's across its restarts), never "
        "from the node's portfolio alone.",
    )
    unrealized_pnl: str | None = Field(
        default=None, description="Unrealized PnL of the open positions at the price a close would trade at."
    )
    total_pnl: str | None = Field(default=None, description="Realized plus unrealized PnL.")
    positions: list[Position] = Field(
        default_factory=list,
        description="Open net positions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["instrument"]},
    )
    open_orders: int = Field(
        default=0,
        ge=0,
        description=(
            "Working orders: open or in flight at a venue, held by the node's OrderEmulator (emulated orders, "
            "an emulated bracket's waiting stop-loss and take-profit) or by an execution algorithm."
        ),
    )
    orders_submitted: int | None = Field(
        default=None,
        ge=0,
        description="Orders this run sent on to a venue: let through by the runtime's order gate, the last step "
        "before the execution client (orders denied there or by NautilusTrader's RiskEngine are not; an "
        "execution algorithm's slices are, each). Counted from the start of this pod, for live and paper alike.",
    )
    orders_filled: int | None = Field(
        default=None,
        ge=0,
        description="Of `ordersSubmitted`, the orders with at least one fill.",
    )
    slippage_bps: str | None = Field(
        default=None,
        description="Slippage of this run's fills against their arrival price (the market price the order gate "
        "saw when it sent the order on: the mid, else the last trade or bar), in basis points, 2 decimals: "
        "sum(side * (price - arrival) * quantity) / sum(arrival * quantity) * 10000, side +1 for a BUY and -1 for a "
        "SELL, so positive is worse than arrival. Fills without an arrival price are left out; none: not set. "
        "Recomputable from the ledger's fills (`arrival_price`), as `livestrat report` does.",
    )
    heartbeat: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the runtime last reported. The operator sets `Stale` when it is too old.",
    )
    strategy_uid: str | None = Field(
        default=None,
        description="The uid of the LiveStrategy whose pod reported this `trading` and `risk`. Another object's "
        "(a LiveStrategy deleted and applied again while its old pod still ran): the operator, its RiskBudgets and "
        "the desk act on none of it, and the operator removes it. Absent: a runtime older than this field.",
    )
    node_state: str | None = Field(
        default=None,
        description="The runtime's own view: Starting, Running, Halting, Stopped, or HaltIncomplete (stopped, "
        "but the halt left orders open at a venue, or a position under haltPolicy flatten: check the venue).",
    )
    halt_dust: str | None = Field(
        default=None,
        description="After a halt under haltPolicy flatten: what of a spot position no order could sell (below the "
        "symbol's step, minimum quantity or notional; Binance takes a buy's commission in the asset bought), per "
        "instrument, with the amount the account still holds. Not a reason for HaltIncomplete.",
    )
    replay: ReplayProgress | None = Field(default=None, description="Paper replay progress.")
    backtest: BacktestAgreement | None = Field(
        default=None,
        description="Paper on a replay, once the replay finished: its fills against a NautilusTrader backtest of "
        "the same spec over the same catalog (what a promotion's criteria.maxBacktestMismatches checks).",
    )


class RiskState(StatusModel):
    """Post-trade risk state reported by the runtime."""

    state: RiskStateName = Field(default=RiskStateName.ACTIVE, description="Active, Reducing or Halted.")
    reason: str | None = Field(default=None, description="Why it is not Active.")
    breached_limit: str | None = Field(
        default=None, description="Which limit broke: maxDailyLoss, maxDrawdown, maxPosition, ..."
    )
    breached_at: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the limit broke, on the runtime's wall clock; acknowledge a risk halt by annotating the "
        "LiveStrategy with this value (livestrat.io/risk-acknowledged).",
    )
    breached_at_market: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the limit broke in market time: the time of the event that broke it (the replayed "
        "data's in paper, the venue's latest event live). Absent for a halt recorded before it was kept.",
    )
    halt_recorded: bool | None = Field(
        default=None,
        description="Whether the risk halt is recorded in the ledger, so that a restarted runtime stays "
        "halted. False while the ledger cannot be written: the runtime keeps retrying and stays not ready.",
    )
    daily_pnl: str | None = Field(default=None, description="PnL since the UTC day began.")
    daily_pnl_day: str | None = Field(
        default=None,
        json_schema_extra={"format": "date"},
        description="The UTC day dailyPnl is of (YYYY-MM-DD), in market time: the venue's on a live feed (live, or "
        "paper with a venue's adapter), the replayed data's in a paper replay (sandbox). A runtime at rest since "
        "midnight, or stopped, still shows an earlier day's.",
    )
    drawdown: str | None = Field(default=None, description="Distance of total PnL below its peak.")
    max_drawdown: str | None = Field(
        default=None,
        description="The largest drawdown seen since the runtime started (a paper strategy's run); with "
        "risk.maxDailyLoss or risk.maxDrawdown set, as `drawdown`.",
    )
    exposure: str | None = Field(
        default=None,
        description="Gross notional of open positions: the sum of trading.positions[].notional, per currency, to "
        "the cent (each is rounded on its own); a position without a price yet counts nothing.",
    )


class HaltRecord(StatusModel):
    """``status.halt``: the operator's decision that no pod of the strategy may run, and why.

    The operator writes it before it tells a pod to stop for a halt (scales the StatefulSet to
    0, or holds it there for deletion) and removes it before it lets a pod start again. The
    runtime reads it, fresh from the API server, when it gets SIGTERM: only a halt applies
    ``spec.haltPolicy``; any other stop (a rollout, an eviction, a drain, a lost node) cancels
    the orders and never flattens.
    """

    reason: str = Field(
        min_length=1,
        max_length=1024,
        description="Why, in one CamelCase word: ScaledToZero, KillSwitch, RiskLimitBreached, Deleting, or a "
        "spec problem (the Halted condition's reason).",
    )
    message: str = Field(default="", max_length=32768, description="Why, in words.")
    since: str = Field(
        json_schema_extra={"format": "date-time"}, description="When the operator decided the strategy halts."
    )


class NettingClaim(StatusModel):
    """``status.nettingClaim``: the instruments of a venue account this live strategy holds the claim on.

    The operator records it when it lets the strategy's pod run as their one holder, and keeps it while the
    strategy is halted (a halted strategy may still hold a position there): another live strategy of the namespace
    on that account and instrument gets no pod (``NettingAccountInUse``) until this one is deleted, or its pod
    starts again on another account (or in paper mode): docs/operator.md, "One strategy per account and
    instrument". The name is kept from when only NETTING accounts were claimed; every live account is now.
    """

    account: str = Field(
        min_length=1,
        max_length=1024,
        description="The account: adapter, market (account type), environment and credentials Secret (for "
        "interactive_brokers, options.account_id), as the operator identifies it without reading the Secret.",
    )
    instruments: list[str] = Field(default_factory=list, max_length=64, description="The instruments held.")
    since: str = Field(json_schema_extra={"format": "date-time"}, description="When the operator recorded it.")


class InstrumentShare(StatusModel):
    """A member's share of one instrument's budget limits."""

    instrument: str = Field(description="Instrument ID.")
    max_gross_exposure: str | None = Field(default=None, description="Its share of the gross limit, `AMOUNT CCY`.")
    max_net_exposure: str | None = Field(default=None, description="Its share of the net limit, `AMOUNT CCY`.")


class BudgetShare(StatusModel):
    """``status.budget``: this strategy's share of the RiskBudget it is a member of (written by the operator).

    The wire contract between the operator, which computes shares from the budget's ``allocation``,
    and the runtime's order gate, which holds the strategy within them before a trade. Money is
    ``AMOUNT CCY`` in the budget's currency; absent means no such limit.
    """

    budget: str = Field(description="Name of the RiskBudget (same namespace).")
    weight: float = Field(ge=0, le=1, description="This member's weight: its fraction of each limit.")
    max_gross_exposure: str | None = Field(default=None, description="Share of limits.maxGrossExposure.")
    max_net_exposure: str | None = Field(default=None, description="Share of limits.maxNetExposure.")
    instruments: list[InstrumentShare] = Field(
        default_factory=list,
        description="Shares of limits.instruments.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["instrument"]},
    )
    max_daily_loss: str | None = Field(default=None, description="Share of limits.maxDailyLoss.")
    max_drawdown: str | None = Field(default=None, description="Share of limits.maxDrawdown.")
    max_open_orders: int | None = Field(default=None, ge=0, description="Share of limits.maxOpenOrders.")
    reduce_only: bool = Field(
        default=False,
        description="The budget is breached under onBreach ReduceOnly: only orders that reduce a position pass.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The RiskBudget's metadata.generation these shares were computed from."
    )


class LiveStrategyStatus(StatusModel):
    """Observed state. Operator-owned fields first, then the runtime's."""

    phase: Phase | None = Field(default=None, description="Where the strategy is in its lifecycle.")
    message: str | None = Field(default=None, description="One line explaining the phase.")
    replicas: int = Field(default=0, ge=0, le=1, description="Strategy pods running (scale subresource).")
    selector: str | None = Field(default=None, description="Label selector of the pod (scale subresource).")
    observed_generation: int | None = Field(default=None, ge=0, description="The spec generation acted on.")
    pod_name: str | None = Field(default=None, description="The strategy's pod.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="metav1.Condition list: Ready, Trading, Halted, RiskHalted, ConfigDrift, InvalidSpec, Stale, "
        "DisruptionBlocked.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    halt: HaltRecord | None = Field(
        default=None,
        description="Set by the operator while the strategy is halted (or halting): the runtime applies "
        "spec.haltPolicy only when it stops while this is set, or while the LiveStrategy is being deleted. "
        "Absent: a stop is a restart (rollout, eviction, drain), which cancels orders and never flattens.",
    )
    promotion: PromotionRecord | None = Field(
        default=None,
        description="With spec.promotion: the operator's last promotion decision, who asked, and the paper "
        "strategy's figures it was made on.",
    )
    netting_claim: NettingClaim | None = Field(
        default=None,
        description="Set by the operator for a live strategy once its pod runs: the instruments of its venue "
        "account it holds, against every other live strategy of the namespace on that account.",
    )
    trading: TradingState | None = Field(default=None, description="Reported by the runtime.")
    risk: RiskState | None = Field(default=None, description="Reported by the runtime.")
    budget: BudgetShare | None = Field(
        default=None,
        description="Set by the operator while the strategy is a member of a RiskBudget: its share of the "
        "budget's limits, which its order gate holds it within.",
    )


# Who writes which field of LiveStrategyStatus (Python names): neither writer touches the other's.
OPERATOR_FIELDS = (
    "phase",
    "message",
    "replicas",
    "selector",
    "observed_generation",
    "pod_name",
    "conditions",
    "halt",
    "promotion",
    "netting_claim",
)
RUNTIME_FIELDS = ("trading", "risk")


def another_object(body: Mapping[str, Any], uid: Any) -> str | None:
    """``body``'s uid when ``body`` is another object than the one of ``uid`` (a name outlives its object: deleted
    and applied again, the LiveStrategy of a name is a new one); None when it is that one, or when either uid is not
    known (None, empty, not a string: nothing to compare)."""
    meta = body.get("metadata")
    held = meta.get("uid") if isinstance(meta, Mapping) else None
    return held if isinstance(held, str) and isinstance(uid, str) and held and uid and held != uid else None


def pushed_by_another(body: Mapping[str, Any]) -> str | None:
    """The uid of the earlier LiveStrategy whose pod pushed ``body``'s ``trading`` and ``risk`` (its
    ``trading.strategyUid`` is not ``body``'s uid), or None: its own pod's, or not stamped (a runtime or a CRD older
    than the stamp, which the API server prunes), or nothing pushed."""
    status = body.get("status")
    trading = status.get("trading") if isinstance(status, Mapping) else None
    stamp = trading.get("strategyUid") if isinstance(trading, Mapping) else None
    return stamp if another_object(body, stamp) is not None else None


def own_status(body: Mapping[str, Any]) -> Any:
    """``body``'s status as every reader takes it: without the ``trading`` and ``risk`` a pod of an earlier object
    of the same name pushed (``pushed_by_another``), which are that object's, not this one's."""
    status = body.get("status")
    if pushed_by_another(body) is None:
        return status
    return {key: value for key, value in status.items() if key not in RUNTIME_FIELDS}


# Written by the operator's RiskBudget reconciler, apart from the LiveStrategy's own reconciler.
BUDGET_FIELDS = ("budget",)
