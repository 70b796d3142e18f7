"""What a RiskBudget's members add up to, and how much of each limit that uses.

Pure arithmetic on what the members' runtimes report in their status, in exact decimals: the
runtime writes money with two places, so every sum here is exact and every total shown is the
sum of the member rows shown beside it (docs/risk-budgets.md says how to add them up again).

- A position's **signed notional**: ``status.trading.positions[].notional``, negative for a SHORT.
- **Gross** exposure: Σ|signed notional| over members (and instruments, for the total).
- **Net** exposure: |Σ signed notional| over members (and instruments, for the total).
- **Daily PnL** and **drawdown**: Σ of the members' ``status.risk.dailyPnl`` / ``drawdown``. The sum of
  drawdowns, each from its member's own peak, is at least the drawdown of the members' summed PnL: the
  limit holds conservatively, and needs no history the status does not carry. A daily PnL on a venue's live
  feed counts on the UTC day it is of (``status.risk.dailyPnlDay``): one of an earlier day (a runtime halted,
  stopped or quiet since midnight) is not today's loss, and counts as nothing (its row says so). A paper
  replay's day is its data's: counted as it is.
- **Open orders**: Σ ``status.trading.openOrders``.

Only figures in the budget's currency count against its limits; others are shown per currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import (
    CurrencyTotals,
    InstrumentExposure,
    InstrumentTotals,
    LimitUsage,
    MemberFigures,
)
from livestrat.api.daily_pnl import earlier_day
from livestrat.api.status import RiskState, TradingState

Amounts = dict[str, Decimal]  # currency code -> amount


def parse_money(text: str | None) -> Amounts | None:
    """``"-12.50 USDT"`` or ``"1.5 BTC, -3.00 USDT"`` -> amounts per currency; None if it does not read."""
    if not text:
        return {}
    found: Amounts = {}
    for part in text.split(","):
        pieces = part.split()
        if len(pieces) != 2:
            return None
        try:
            amount = Decimal(pieces[0])
        except InvalidOperation:
            return None
        if not amount.is_finite():
            return None
        found[pieces[1]] = found.get(pieces[1], Decimal(0)) + amount
    return found


CENT = Decimal("0.01")


def money(amount: Decimal, currency: str) -> str:
    """At least two places, as the runtime writes money (a sum of nothing is "0.00", not "0"); never "-0"."""
    if int(amount.as_tuple().exponent) > -2:
        amount = amount.quantize(CENT)
    return f"{amount + 0:f} {currency}"


def money_list(amounts: Mapping[str, Decimal]) -> str | None:
    return ", ".join(money(amounts[c], c) for c in sorted(amounts)) if amounts else None


@dataclass(frozen=True)
class MemberReport:
    """One member as the operator's cache shows it: its status as the runtime reported it."""

    name: str
    exists: bool = True
    phase: str | None = None
    trading: TradingState | None = None
    risk: RiskState | None = None
    stale: bool = False  # its ``Stale`` condition: the runtime's last report is out of date
    # A paper replay of a catalog's history (``venue.adapter: sandbox``): its day is the data's. None: not known (the
    # spec does not read): its daily PnL counts as shown, whatever its day.
    replays: bool | None = False


@dataclass(frozen=True)
class MemberNumbers:
    """One member's figures, exact."""

    name: str
    reporting: bool
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (instrument, currency) -> signed
    daily_pnl: Amounts = field(default_factory=dict)
    drawdown: Amounts = field(default_factory=dict)
    open_orders: int = 0
    total_pnl: Amounts = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    stale: bool = False  # counted with the figures it reported last, which are out of date

    @property
    def gross(self) -> Amounts:
        gross: Amounts = {}
        for (_instrument, currency), notional in self.positions.items():
            gross[currency] = gross.get(currency, Decimal(0)) + abs(notional)
        return gross

    def in_currency(self, currency: str) -> dict[str, Decimal]:
        """Signed notional per instrument, in ``currency``."""
        return {i: n for (i, c), n in self.positions.items() if c == currency}


def member_numbers(report: MemberReport, today: date | None = None) -> MemberNumbers:
    """What one member's status says, exactly; what does not read is a problem, counted as nothing.

    ``today``: the operator's UTC day; a daily PnL of an earlier day on a live feed counts as nothing."""
    if not report.exists:
        return MemberNumbers(report.name, reporting=False, problems=("no such LiveStrategy in this namespace",))
    if report.trading is None:
        return MemberNumbers(report.name, reporting=False, problems=("its runtime has not reported yet",))
    problems: list[str] = []
    if report.stale:
        # Counted all the same: its positions and its loss do not go away because its reports stopped.
        problems.append("its runtime's report is out of date (Stale): its last figures are counted")
    positions: dict[tuple[str, str], Decimal] = {}
    for position in report.trading.positions:
        notional = parse_money(position.notional)
        if not notional:
            problems.append(f"position {position.instrument} reports no notional (a runtime older than budgets?)")
            continue
        sign = -1 if position.side == "SHORT" else 1
        for currency, amount in (notional or {}).items():
            key = (position.instrument, currency)
            positions[key] = positions.get(key, Decimal(0)) + sign * abs(amount)
    risk = report.risk or RiskState()

    def read(what: str, text: str | None) -> Amounts:
        amounts = parse_money(text)
        if amounts is None:
            problems.append(f"{what} does not read as money")
            return {}
        return amounts

    daily_pnl = read("status.risk.dailyPnl", risk.daily_pnl)
    earlier = earlier_day(risk.daily_pnl_day, today, replays=report.replays)
    if earlier is not None and daily_pnl:
        problems.append(
            f"status.risk.dailyPnl {money_list(daily_pnl)} is of {earlier}, not of today (UTC {today}): not counted"
        )
        daily_pnl = dict.fromkeys(daily_pnl, Decimal(0))  # today's so far: nothing this runtime has reported
    return MemberNumbers(
        name=report.name,
        reporting=True,
        positions=positions,
        daily_pnl=daily_pnl,
        drawdown=read("status.risk.drawdown", risk.drawdown),
        open_orders=report.trading.open_orders,
        total_pnl=read("status.trading.totalPnl", report.trading.total_pnl),
        problems=tuple(problems),
        stale=report.stale,
    )


@dataclass(frozen=True)
class Usage:
    """One limit against the figure counted for it, and which member holds most of that figure."""

    limit: str
    used: Decimal
    allowed: Decimal
    money: bool
    largest: str | None  # the member with the largest part of ``used`` (ties: first by name)

    @property
    def breached(self) -> bool:
        return self.used > self.allowed

    @property
    def percent(self) -> int:
        return int(self.used * 100 // self.allowed) if self.allowed > 0 else 0

    def row(self, currency: str) -> LimitUsage:
        def text(value: Decimal) -> str:
            return money(value, currency) if self.money else f"{value:f}"

        return LimitUsage(limit=self.limit, used=text(self.used), allowed=text(self.allowed), percent=self.percent)


@dataclass(frozen=True)
class Figures:
    members: list[MemberNumbers]
    totals: dict[str, dict[str, Decimal]]  # currency -> gross, net, dailyPnl, drawdown
    instruments: dict[str, tuple[Decimal, Decimal]]  # instrument -> (gross, net) in the budget's currency
    open_orders: int
    usage: list[Usage]

    @property
    def breaches(self) -> list[Usage]:
        return [u for u in self.usage if u.breached]


def _largest(parts: Mapping[str, Decimal]) -> str | None:
    """The member with the largest part (ties: the first by name); None when no member has a positive part."""
    ranked = sorted(((-value, name) for name, value in parts.items() if value > 0))
    return ranked[0][1] if ranked else None


def _net_usage(limit: str, signed: Mapping[str, Decimal], allowed: float) -> Usage:
    net = sum(signed.values(), Decimal(0))
    # The breacher of a net limit is the member whose position points the way the net does, most.
    direction = 1 if net >= 0 else -1
    return Usage(limit, abs(net), Decimal(str(allowed)), True, _largest({m: direction * v for m, v in signed.items()}))


def aggregate(spec: RiskBudgetSpec, reports: Sequence[MemberReport], today: date | None = None) -> Figures:
    """Every member's figures, their totals, and the usage of each limit set; ``today``: the operator's UTC day."""
    members = [member_numbers(r, today) for r in sorted(reports, key=lambda r: r.name)]
    ccy = spec.currency
    totals: dict[str, dict[str, Decimal]] = {}
    for member in members:
        figures = (("grossExposure", member.gross), ("dailyPnl", member.daily_pnl), ("drawdown", member.drawdown))
        for key, amounts in figures:
            for currency, amount in amounts.items():
                row = totals.setdefault(currency, {})
                row[key] = row.get(key, Decimal(0)) + amount
        for (_instrument, currency), notional in member.positions.items():
            row = totals.setdefault(currency, {})
            row["signed"] = row.get("signed", Decimal(0)) + notional
    for row in totals.values():
        row["netExposure"] = abs(row.pop("signed", Decimal(0)))

    by_instrument: dict[str, dict[str, Decimal]] = {}  # instrument -> member -> signed notional (budget ccy)
    for member in members:
        for instrument, notional in member.in_currency(ccy).items():
            by_instrument.setdefault(instrument, {})[member.name] = notional
    instruments = {
        i: (sum((abs(v) for v in parts.values()), Decimal(0)), abs(sum(parts.values(), Decimal(0))))
        for i, parts in sorted(by_instrument.items())
    }
    open_orders = sum(m.open_orders for m in members)

    limits = spec.limits
    usage: list[Usage] = []
    if limits.max_gross_exposure is not None:
        parts = {m.name: m.gross.get(ccy, Decimal(0)) for m in members}
        usage.append(
            Usage(
                "maxGrossExposure",
                sum(parts.values(), Decimal(0)),
                Decimal(str(limits.max_gross_exposure)),
                True,
                _largest(parts),
            )
        )
    if limits.max_net_exposure is not None:
        signed = {m.name: sum(m.in_currency(ccy).values(), Decimal(0)) for m in members}
        usage.append(_net_usage("maxNetExposure", signed, limits.max_net_exposure))
    for limit in limits.instruments or []:
        parts = {m.name: m.in_currency(ccy).get(limit.instrument, Decimal(0)) for m in members}
        where = f"instruments[{limit.instrument}]"
        if limit.max_gross_exposure is not None:
            gross = {name: abs(v) for name, v in parts.items()}
            usage.append(
                Usage(
                    f"{where}.maxGrossExposure",
                    sum(gross.values(), Decimal(0)),
                    Decimal(str(limit.max_gross_exposure)),
                    True,
                    _largest(gross),
                )
            )
        if limit.max_net_exposure is not None:
            usage.append(_net_usage(f"{where}.maxNetExposure", parts, limit.max_net_exposure))
    if limits.max_daily_loss is not None:
        losses = {m.name: -m.daily_pnl.get(ccy, Decimal(0)) for m in members}
        loss = max(Decimal(0), sum(losses.values(), Decimal(0)))
        usage.append(Usage("maxDailyLoss", loss, Decimal(str(limits.max_daily_loss)), True, _largest(losses)))
    if limits.max_drawdown is not None:
        drawdowns = {m.name: m.drawdown.get(ccy, Decimal(0)) for m in members}
        usage.append(
            Usage(
                "maxDrawdown",
                sum(drawdowns.values(), Decimal(0)),
                Decimal(str(limits.max_drawdown)),
                True,
                _largest(drawdowns),
            )
        )
    if limits.max_open_orders is not None:
        orders = {m.name: Decimal(m.open_orders) for m in members}
        usage.append(
            Usage("maxOpenOrders", Decimal(open_orders), Decimal(limits.max_open_orders), False, _largest(orders))
        )
    return Figures(members, totals, instruments, open_orders, usage)


def member_rows(
    figures: Figures, reports: Iterable[MemberReport], weights: Mapping[str, float], halted: Iterable[str]
) -> list[MemberFigures]:
    phases = {r.name: r.phase for r in reports}
    stopped = set(halted)
    rows = []
    for m in figures.members:
        positions = [
            InstrumentExposure(instrument=i, notional=money(n, c)) for (i, c), n in sorted(m.positions.items())
        ]
        rows.append(
            MemberFigures(
                name=m.name,
                reporting=m.reporting,
                phase=phases.get(m.name),
                weight=weights.get(m.name),
                positions=positions,
                gross_exposure=money_list(m.gross),
                daily_pnl=money_list(m.daily_pnl),
                drawdown=money_list(m.drawdown),
                open_orders=m.open_orders,
                halted=m.name in stopped,
                note="; ".join(m.problems) or None,
            )
        )
    return rows


def total_rows(figures: Figures) -> list[CurrencyTotals]:
    return [
        CurrencyTotals(
            currency=currency,
            gross_exposure=money(row.get("grossExposure", Decimal(0)), currency),
            net_exposure=money(row.get("netExposure", Decimal(0)), currency),
            daily_pnl=money(row.get("dailyPnl", Decimal(0)), currency),
            drawdown=money(row.get("drawdown", Decimal(0)), currency),
        )
        for currency, row in sorted(figures.totals.items())
    ]


def instrument_rows(figures: Figures, currency: str) -> list[InstrumentTotals]:
    return [
        InstrumentTotals(instrument=i, gross_exposure=money(gross, currency), net_exposure=money(net, currency))
        for i, (gross, net) in figures.instruments.items()
    ]
