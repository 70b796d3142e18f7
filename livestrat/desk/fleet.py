"""The desk's view of the fleet: one :class:`StrategyRow` per LiveStrategy, read from the object as the API stores it.

The status is parsed with the API's own models (:class:`livestrat.api.status.LiveStrategyStatus`, which ignores
fields a newer writer added), the risk limits with :class:`livestrat.api.spec.RiskLimits`; nothing here reads a
status field by hand. Money is written ``AMOUNT CCY`` by the runtime (several currencies joined with ``", "``):
:func:`parse_money` reads it, once, into ``{currency: Decimal}``.

A row never fails on an object that does not read (a status a newer runtime wrote, a spec stored past validation):
what reads is shown and :attr:`StrategyRow.problem` says what did not, so one bad object cannot blank the fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from livestrat.api.contract import HALT_ANNOTATION, TWIN_OF_LABEL
from livestrat.api.daily_pnl import earlier_day, replays_history
from livestrat.api.runtime_config import HEARTBEAT_INTERVAL_SECONDS
from livestrat.api.spec import RiskLimits
from livestrat.api.status import Condition, Fill, LiveStrategyStatus, Position, own_status

Money = Mapping[str, Decimal]

# The runtime pushes its status at least every HEARTBEAT_INTERVAL_SECONDS, even with nothing to report
# (strategy_runtime/report/status_push.py); three missed heartbeats in a row is a runtime that stopped reporting,
# one missed heartbeat is only a slow API server. (The operator's own ``Stale`` condition uses its setting
# ``staleAfterSeconds``, 60 s by default: the desk warns earlier, the operator acts later.)
MISSED_HEARTBEATS = 3
STALE_AFTER = timedelta(seconds=MISSED_HEARTBEATS * HEARTBEAT_INTERVAL_SECONDS)


class MoneyError(ValueError):
    pass


def parse_money(text: str | None) -> dict[str, Decimal]:
    """``"-12.50 USDT"`` -> ``{"USDT": Decimal("-12.50")}``; ``"1 USDT, 2 BTC"`` -> both; None or "" -> ``{}``."""
    amounts: dict[str, Decimal] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        amount, _, currency = part.partition(" ")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise MoneyError(f"{text!r} is not money: expected 'AMOUNT CCY', e.g. '-12.50 USDT'") from None
        currency = currency.strip()
        if not currency or not value.is_finite():
            raise MoneyError(f"{text!r} is not money: expected 'AMOUNT CCY', e.g. '-12.50 USDT'")
        amounts[currency] = amounts.get(currency, Decimal(0)) + value
    return amounts


def money_text(amounts: Money) -> str:
    """The way the desk writes money: ``-12.50 USDT, 0.01 BTC`` (as the runtime does), ``-`` for none."""
    if not amounts:
        return "-"
    return ", ".join(f"{amounts[currency]:f} {currency}" for currency in sorted(amounts))


def money_document(amounts: Money) -> dict[str, str]:
    """Money in a document (``-o json|yaml``): ``{"USDT": "-12.50"}``, in currency order, ``{}`` for none."""
    return {currency: f"{amount:f}" for currency, amount in sorted(amounts.items())}


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as Kubernetes and the runtime write it (``...Z``), or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class LimitUse:
    """How much of one post-trade limit is used: ``used`` of ``allowed`` (``fraction`` 1.0 is the breach)."""

    limit: str  # the spec's field name: maxDailyLoss, maxDrawdown, maxPosition
    used: Decimal
    allowed: Decimal
    unit: str  # a currency, or "" for a quantity
    # maxDailyLoss on a live feed when the status's dailyPnl is of an earlier day (``daily_pnl.earlier_day``): that
    # day, and the loss shown for it; ``used`` is then today's, nothing.
    of_day: str | None = None
    shown: Decimal | None = None

    @property
    def fraction(self) -> float:
        return float(self.used / self.allowed) if self.allowed else 0.0

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        earlier = f"; {self.shown:f} on {self.of_day}" if self.of_day is not None and self.shown is not None else ""
        return f"{self.limit} {self.used:f}/{self.allowed.normalize():f}{unit} ({self.fraction:.0%}{earlier})"


@dataclass(frozen=True)
class StrategyRow:
    namespace: str
    name: str
    mode: str
    venue: str
    phase: str
    replicas: int  # pods running (status.replicas)
    desired_replicas: int | None  # spec.replicas
    heartbeat: datetime | None
    positions: tuple[Position, ...]
    open_orders: int
    fills: int
    realized_pnl: Money
    unrealized_pnl: Money
    total_pnl: Money
    risk_state: str
    risk_reason: str | None
    limits: tuple[LimitUse, ...]
    last_fill: Fill | None
    conditions: tuple[Condition, ...] = ()
    halt_note: str | None = None  # the desk's halt annotation, when present
    message: str | None = None  # status.message: the phase in one line
    problem: str | None = None  # what of the object did not read
    twin_of: str | None = None  # a paper twin's live strategy (its livestrat.io/twin-of label)
    status: LiveStrategyStatus = field(default_factory=LiveStrategyStatus, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def nearest_limit(self) -> LimitUse | None:
        """The post-trade limit closest to its breach."""
        return max(self.limits, key=lambda use: use.fraction, default=None)

    def heartbeat_age(self, now: datetime) -> timedelta | None:
        return None if self.heartbeat is None else max(now - self.heartbeat, timedelta(0))

    def stale(self, now: datetime) -> bool:
        """A runtime that should be reporting has not for :data:`STALE_AFTER`. A strategy without a pod is not stale:
        nothing is meant to report for it."""
        if self.replicas < 1:
            return False
        age = self.heartbeat_age(now)
        return age is None or age > STALE_AFTER

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


def row(body: Mapping[str, Any], now: datetime | None = None) -> StrategyRow:
    """One row of the fleet from a LiveStrategy as the API server returns it. ``now`` (default: the clock) says which
    UTC day today is, for a daily loss of an earlier day (``daily_pnl.earlier_day``); ages are computed when shown
    (:meth:`StrategyRow.heartbeat_age`)."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    meta = body.get("metadata") or {}
    spec = body.get("spec") if isinstance(body.get("spec"), Mapping) else {}
    problems: list[str] = []
    try:
        status = LiveStrategyStatus.model_validate(own_status(body) or {})
    except ValidationError as exc:
        problems.append(f"status does not read: {_first_error(exc)}")
        status = LiveStrategyStatus()
    try:
        limits_spec: RiskLimits | None = RiskLimits.model_validate(spec.get("risk") or {})
    except ValidationError as exc:
        problems.append(f"spec.risk does not read: {_first_error(exc)}")
        limits_spec = None
    trading, risk = status.trading, status.risk
    venue = spec.get("venue") if isinstance(spec.get("venue"), Mapping) else {}

    def money(text: str | None, where: str) -> dict[str, Decimal]:
        try:
            return parse_money(text)
        except MoneyError as exc:
            problems.append(f"{where}: {exc}")
            return {}

    positions = tuple(trading.positions) if trading else ()
    earlier = earlier_day(risk.daily_pnl_day, today, replays=replays_history(spec)) if risk is not None else None
    limits = _limit_uses(limits_spec, risk, positions, money, earlier) if limits_spec is not None else ()
    replicas = spec.get("replicas")
    return StrategyRow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        mode=str(spec.get("mode") or "?"),
        venue=str(venue.get("name") or venue.get("adapter") or "?"),
        phase=str(status.phase or "Unknown"),
        replicas=status.replicas,
        desired_replicas=replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None,
        heartbeat=parse_time(trading.heartbeat) if trading else None,
        positions=positions,
        open_orders=trading.open_orders if trading else 0,
        fills=trading.fills if trading else 0,
        realized_pnl=money(trading.realized_pnl if trading else None, "status.trading.realizedPnl"),
        unrealized_pnl=money(trading.unrealized_pnl if trading else None, "status.trading.unrealizedPnl"),
        total_pnl=money(trading.total_pnl if trading else None, "status.trading.totalPnl"),
        risk_state=str(risk.state) if risk else "Active",
        risk_reason=risk.reason if risk else None,
        limits=limits,
        last_fill=trading.last_fill if trading else None,
        conditions=tuple(status.conditions),
        halt_note=(meta.get("annotations") or {}).get(HALT_ANNOTATION),
        message=status.message,
        problem="; ".join(problems) or None,
        twin_of=_label(meta, TWIN_OF_LABEL),
        status=status,
    )


def _label(meta: Mapping[str, Any], key: str) -> str | None:
    found = meta.get("labels")
    value = found.get(key) if isinstance(found, Mapping) else None
    return value if isinstance(value, str) else None


def _limit_uses(
    limits: RiskLimits,
    risk: Any,
    positions: Sequence[Position],
    money: Callable[[str | None, str], dict[str, Decimal]],
    earlier: date | None,
) -> tuple[LimitUse, ...]:
    """Each post-trade limit the spec sets, with what the runtime reports against it (status.risk and positions).
    ``earlier``: the day of the status's daily PnL when that day is over (``daily_pnl.earlier_day``)."""
    uses: list[LimitUse] = []
    daily = (
        money(risk.daily_pnl, "status.risk.dailyPnl")
        if limits.max_daily_loss is not None and risk is not None and risk.daily_pnl
        else {}
    )
    if daily:
        # a loss uses the limit; a gain uses none of it. Several currencies: the one that lost most.
        loss, currency = max((-amount, ccy) for ccy, amount in daily.items())
        loss = max(loss, Decimal(0))
        allowed = _decimal(limits.max_daily_loss)
        if earlier is not None:  # that day is over: today's loss so far is nothing this runtime reported
            uses.append(LimitUse("maxDailyLoss", Decimal(0), allowed, currency, of_day=earlier.isoformat(), shown=loss))
        else:
            uses.append(LimitUse("maxDailyLoss", loss, allowed, currency))
    drawdowns = (
        money(risk.drawdown, "status.risk.drawdown")
        if limits.max_drawdown is not None and risk is not None and risk.drawdown
        else {}
    )
    if drawdowns:
        drawdown, currency = max((amount, ccy) for ccy, amount in drawdowns.items())
        uses.append(LimitUse("maxDrawdown", max(drawdown, Decimal(0)), _decimal(limits.max_drawdown), currency))
    if limits.max_position is not None:
        # maxPosition is a quantity (the instrument's base units), compared with each net position; the runtime's
        # status.risk.exposure is a notional in money and cannot be compared with it.
        quantities = [_decimal(p.quantity) for p in positions if _decimal(p.quantity) is not None]
        uses.append(LimitUse("maxPosition", max(quantities, default=Decimal(0)), _decimal(limits.max_position), ""))
    return tuple(use for use in uses if use.allowed)


def _decimal(value: Any) -> Decimal:
    try:
        return abs(Decimal(str(value)))
    except InvalidOperation:
        return Decimal(0)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc") or ()) or "(root)"
    return f"{where}: {error.get('msg')}"


# ------------------------------------------------------------------------------------------------ the fleet


def totals_by_currency(rows: Iterable[StrategyRow], which: str = "total_pnl") -> dict[str, Decimal]:
    """Sum of one PnL field (``total_pnl``, ``realized_pnl``, ``unrealized_pnl``) over rows, per currency: amounts in
    different currencies are never added together."""
    totals: dict[str, Decimal] = {}
    for each in rows:
        for currency, amount in getattr(each, which).items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    return dict(sorted(totals.items()))


def _largest_pnl(each: StrategyRow) -> Decimal:
    return max((abs(amount) for amount in each.total_pnl.values()), default=Decimal(0))


def _risk_closeness(each: StrategyRow) -> float:
    if each.risk_state != "Active":
        return float("inf")  # a breach, or a guard reducing: nearer than any limit in use
    nearest = each.nearest_limit
    return nearest.fraction if nearest else 0.0


# The sort orders the desk offers (``--sort``): each a key, and whether the largest comes first.
SORTS: dict[str, tuple[Callable[[StrategyRow], Any], bool]] = {
    "name": (lambda each: (each.namespace, each.name), False),
    "namespace": (lambda each: (each.namespace, each.name), False),
    "phase": (lambda each: (each.phase, each.namespace, each.name), False),
    "pnl": (_largest_pnl, True),
    "risk": (_risk_closeness, True),
    "fills": (lambda each: each.fills, True),
    "heartbeat": (lambda each: each.heartbeat.timestamp() if each.heartbeat else float("-inf"), False),
}


def sort_rows(rows: Iterable[StrategyRow], by: str = "name") -> list[StrategyRow]:
    if by not in SORTS:
        raise ValueError(f"cannot sort by {by!r}: choose one of {', '.join(SORTS)}")
    key, reverse = SORTS[by]
    return sorted(rows, key=key, reverse=reverse)


@dataclass(frozen=True)
class Filters:
    """Which rows to show; ``None`` shows all. Values compare case-insensitively (``--phase running``)."""

    namespace: str | None = None
    mode: str | None = None
    phase: str | None = None
    risk: str | None = None

    def admits(self, each: StrategyRow) -> bool:
        wanted = {"namespace": self.namespace, "mode": self.mode, "phase": self.phase, "risk_state": self.risk}
        return all(value is None or str(getattr(each, attr)).lower() == value.lower() for attr, value in wanted.items())


def select(rows: Iterable[StrategyRow], filters: Filters) -> list[StrategyRow]:
    return [each for each in rows if filters.admits(each)]
