"""How the desk shows the fleet and one strategy: Rich renderables for a terminal, plain documents for ``-o json|yaml``.

Everything shown comes from :class:`livestrat.desk.fleet.StrategyRow` (and, for one strategy, its Events and pod as
the API server returns them); ages are computed against the ``now`` passed in, so one clock serves a whole screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from livestrat.desk.fleet import StrategyRow, money_document, money_text, parse_time, totals_by_currency
from livestrat.desk.redact import scrub_text
from livestrat.desk.twins import TwinComparison

PHASE_STYLES = {
    "Running": "green",
    "Starting": "cyan",
    "Pending": "cyan",
    "Halting": "yellow",
    "Halted": "yellow",
    "RiskHalted": "bold red",
    "Invalid": "red",
    "Failed": "bold red",
}


def age(delta: timedelta | None) -> str:
    """``4s``, ``3m12s``, ``2h5m``, ``3d4h`` (as kubectl shows ages), ``-`` for none."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def since(text: str | None, now: datetime) -> str:
    moment = parse_time(text)
    return age(now - moment) if moment is not None else "-"


def positions_text(each: StrategyRow) -> str:
    return ", ".join(f"{p.side} {p.quantity} {p.instrument}" for p in each.positions) or "flat"


def last_fill_text(each: StrategyRow) -> str:
    fill = each.last_fill
    return f"{fill.side} {fill.quantity} {fill.instrument} @ {fill.price}" if fill else "-"


def _pnl(amounts: Mapping[str, Decimal]) -> Text:
    text = money_text(amounts)
    negative = any(amount < 0 for amount in amounts.values())
    return Text(text, style="red" if negative else ("green" if amounts else ""))


def risk_text(each: StrategyRow) -> Text:
    if each.risk_state != "Active":
        return Text(f"{each.risk_state}: {each.risk_reason or ''}".rstrip(": "), style="bold red")
    return Text("Active", style="green")


def nearest_text(each: StrategyRow) -> Text:
    nearest = each.nearest_limit
    if nearest is None:
        return Text("-")
    style = "red" if nearest.fraction >= 0.8 else ("yellow" if nearest.fraction >= 0.5 else "")
    return Text(nearest.text(), style=style)


def heartbeat_text(each: StrategyRow, now: datetime) -> Text:
    text = age(each.heartbeat_age(now))
    return Text(f"{text} STALE" if each.stale(now) else text, style="bold red" if each.stale(now) else "")


def budget_text(each: StrategyRow) -> str:
    """The RiskBudget the strategy is a member of and its share (status.budget, the operator's), ``-`` for none."""
    share = each.status.budget
    if share is None:
        return "-"
    return f"{share.budget} {share.weight:.0%}" + (" reduce-only" if share.reduce_only else "")


def budget_share_text(each: StrategyRow) -> str | None:
    """One line for ``status NAME``: the budget, the weight, and each limit's share the order gate holds it to."""
    share = each.status.budget
    if share is None:
        return None
    limits = [
        f"{name} {value}"
        for name, value in (
            ("maxGrossExposure", share.max_gross_exposure),
            ("maxNetExposure", share.max_net_exposure),
            ("maxDailyLoss", share.max_daily_loss),
            ("maxDrawdown", share.max_drawdown),
            ("maxOpenOrders", share.max_open_orders),
        )
        if value is not None
    ]
    limits += [
        f"{i.instrument} {name} {value}"
        for i in share.instruments
        for name, value in (("maxGrossExposure", i.max_gross_exposure), ("maxNetExposure", i.max_net_exposure))
        if value is not None
    ]
    text = f"budget: {share.budget}, share {share.weight:.0%}"
    if limits:
        text += ": " + ", ".join(limits)
    if share.reduce_only:
        text += "; REDUCE-ONLY (the budget is breached: only orders that reduce a position pass)"
    return text + f" (`kubectl livestrat budgets {share.budget}`)"


def fleet_table(rows: Sequence[StrategyRow], now: datetime, *, wide: bool = False) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["NAMESPACE", "NAME", "MODE", "VENUE", "PHASE", "HEARTBEAT", "FILLS", "POSITION", "PNL", "RISK", "LIMIT"]
    members = any(each.status.budget is not None for each in rows)  # the column only when a budget is in view
    if members:
        columns.append("BUDGET")
    if wide:
        columns += ["OPEN ORDERS", "REALIZED", "UNREALIZED", "LAST FILL"]
    for column in columns:
        table.add_column(column, no_wrap=True)
    for each in rows:
        cells: list[RenderableType] = [
            each.namespace,
            each.name,
            each.mode,
            each.venue,
            Text(each.phase, style=PHASE_STYLES.get(each.phase, "")),
            heartbeat_text(each, now),
            str(each.fills),
            positions_text(each),
            _pnl(each.total_pnl),
            risk_text(each),
            nearest_text(each),
        ]
        if members:
            cells.append(budget_text(each))
        if wide:
            cells += [str(each.open_orders), _pnl(each.realized_pnl), _pnl(each.unrealized_pnl), last_fill_text(each)]
        table.add_row(*cells)
    return table


def totals_table(rows: Sequence[StrategyRow]) -> Table:
    """Total, realized and unrealized PnL of the rows, per currency (never added across currencies)."""
    table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    for column in ("CURRENCY", "TOTAL PNL", "REALIZED", "UNREALIZED"):
        table.add_column(column, no_wrap=True)
    total = totals_by_currency(rows, "total_pnl")
    realized = totals_by_currency(rows, "realized_pnl")
    unrealized = totals_by_currency(rows, "unrealized_pnl")
    for currency in sorted({*total, *realized, *unrealized}):
        table.add_row(
            currency,
            *(
                _pnl({currency: amounts[currency]} if currency in amounts else {})
                for amounts in (total, realized, unrealized)
            ),
        )
    return table


def fleet_view(rows: Sequence[StrategyRow], now: datetime, *, wide: bool = False) -> RenderableType:
    if not rows:
        return Text("No LiveStrategies found.")
    parts: list[RenderableType] = [fleet_table(rows, now, wide=wide), Text("")]
    running = sum(1 for each in rows if each.phase == "Running")
    parts.append(Text(f"{len(rows)} strategies, {running} running. PnL by currency:"))
    parts.append(totals_table(rows))
    problems = [f"{each.key}: {each.problem}" for each in rows if each.problem]
    parts += [Text(f"! {problem}", style="yellow") for problem in problems]
    return Group(*parts)


# ------------------------------------------------------------------------------------------------ one strategy


def status_view(
    each: StrategyRow, events: Sequence[Mapping[str, Any]], pod: Mapping[str, Any] | None, now: datetime
) -> RenderableType:
    parts: list[RenderableType] = []
    head = Text.assemble(
        (f"{each.namespace}/{each.name}", "bold"),
        f"  {each.mode} on {each.venue}  ",
        (each.phase, PHASE_STYLES.get(each.phase, "")),
        f"  replicas {each.replicas}/{each.desired_replicas if each.desired_replicas is not None else '?'}",
    )
    parts.append(head)
    if each.message:
        parts.append(Text(each.message))
    if each.halt_note:
        parts.append(Text(f"halt annotation: {each.halt_note}", style="yellow"))
    halt = each.status.halt
    if halt is not None:
        parts.append(
            Text(f"halt record: {halt.reason} since {halt.since} ({since(halt.since, now)} ago) {halt.message}")
        )
    promotion = each.status.promotion
    if promotion is not None:  # spec.promotion: the operator's decision and its evidence (docs/promotion.md)
        style = "green" if promotion.state == "Accepted" else "yellow"
        parts.append(Text(f"promotion: {promotion.state} at {promotion.decided_at}: {promotion.message}", style=style))
    share = budget_share_text(each)
    if share is not None:
        parts.append(Text(share, style="yellow" if each.status.budget and each.status.budget.reduce_only else ""))
    parts.append(Text.assemble("heartbeat ", heartbeat_text(each, now)))
    parts.append(_section("Conditions", _conditions(each, now)))
    trading = Table(box=None, pad_edge=False, show_header=False)
    trading.add_column(style="bold")
    trading.add_column()
    trading.add_row("fills", str(each.fills))
    trading.add_row("open orders", str(each.open_orders))
    trading.add_row("positions", positions_text(each))
    trading.add_row("realized PnL", _pnl(each.realized_pnl))
    trading.add_row("unrealized PnL", _pnl(each.unrealized_pnl))
    trading.add_row("total PnL", _pnl(each.total_pnl))
    trading.add_row("last fill", last_fill_text(each) + (f" at {each.last_fill.time}" if each.last_fill else ""))
    parts.append(_section("Trading", trading))
    parts.append(_section("Risk", _risk(each)))
    parts.append(_section("Events", _events(events, now)))
    parts.append(_section("Pod", _pod(pod, now)))
    if each.problem:
        parts.append(Text(f"! {each.problem}", style="yellow"))
    return Group(*parts)


def twin_section(compared: TwinComparison) -> RenderableType:
    """Live vs paper twin (spec.twin), side by side."""
    return _section("Live vs paper twin", compared.table())


def _section(title: str, body: RenderableType) -> RenderableType:
    return Group(Text(""), Text(title, style="bold underline"), body)


def _conditions(each: StrategyRow, now: datetime) -> RenderableType:
    if not each.conditions:
        return Text("none yet")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for condition in each.conditions:
        style = "green" if condition.status == "True" and condition.type in ("Ready", "Trading") else ""
        if condition.status == "True" and condition.type in ("RiskHalted", "InvalidSpec", "Stale"):
            style = "red"
        table.add_row(
            Text(condition.type, style=style),
            str(condition.status),
            condition.reason,
            since(condition.last_transition_time, now),
            scrub_text(condition.message),
        )
    return table


def _risk(each: StrategyRow) -> RenderableType:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("LIMIT", "USED", "ALLOWED", "USED %"):
        table.add_column(column, no_wrap=True)
    for use in each.limits:
        unit = f" {use.unit}" if use.unit else ""
        style = "red" if use.fraction >= 0.8 else ("yellow" if use.fraction >= 0.5 else "")
        table.add_row(
            use.limit,
            f"{use.used:f}{unit}",
            f"{use.allowed.normalize():f}{unit}",
            Text(f"{use.fraction:.0%}", style=style),
        )
    risk = each.status.risk
    lines: list[RenderableType] = [Text.assemble("state ", risk_text(each))]
    if risk is not None and risk.breached_limit:
        lines.append(
            Text(f"breached {risk.breached_limit} at {risk.breached_at} (market time {risk.breached_at_market})")
        )
    if risk is not None and risk.daily_pnl:
        # the day it is of: a runtime at rest since midnight, or stopped, still shows an earlier day's
        day = f" (UTC day {risk.daily_pnl_day})" if risk.daily_pnl_day else ""
        lines.append(Text(f"daily PnL {risk.daily_pnl}{day}"))
    if each.limits:
        lines.append(table)
    else:
        lines.append(Text("no post-trade limit set (spec.risk maxDailyLoss, maxDrawdown, maxPosition)"))
    return Group(*lines)


def _events(events: Sequence[Mapping[str, Any]], now: datetime, last: int = 10) -> RenderableType:
    if not events:
        return Text("none")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("AGE", "TYPE", "REASON", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for event in list(events)[-last:]:
        when = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
        count = int(event.get("count") or 1)
        table.add_row(
            since(when, now) + (f" (x{count})" if count > 1 else ""),
            str(event.get("type") or ""),
            str(event.get("reason") or ""),
            scrub_text(str(event.get("message") or "")),  # written by anyone who may create Events
        )
    return table


def _pod(pod: Mapping[str, Any] | None, now: datetime) -> RenderableType:
    if pod is None:
        return Text("no pod")
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    state = ""
    for container in containers:
        for key, value in (container.get("state") or {}).items():
            state = f"{key}" + (
                f" ({value.get('reason')})" if isinstance(value, Mapping) and value.get("reason") else ""
            )
    node = (pod.get("spec") or {}).get("nodeName") or "-"
    return Text(
        f"{meta.get('name')}  {status.get('phase') or '?'}  ready {ready}/{len(containers) or 1}  restarts {restarts}  "
        f"{state}  node {node}  age {since(meta.get('creationTimestamp'), now)}"
        + ("  TERMINATING" if meta.get("deletionTimestamp") else "")
    )


# ------------------------------------------------------------------------------------------------ documents


def row_document(each: StrategyRow, now: datetime) -> dict[str, Any]:
    """A row as plain JSON-able data (``-o json|yaml``): money as ``{currency: "amount"}``, times as RFC 3339."""
    nearest = each.nearest_limit
    budget = each.status.budget
    return {
        "namespace": each.namespace,
        "name": each.name,
        "mode": each.mode,
        "venue": each.venue,
        "phase": each.phase,
        "replicas": each.replicas,
        "desiredReplicas": each.desired_replicas,
        "heartbeat": each.heartbeat.isoformat().replace("+00:00", "Z") if each.heartbeat else None,
        "heartbeatAgeSeconds": int(each.heartbeat_age(now).total_seconds()) if each.heartbeat else None,
        "stale": each.stale(now),
        "fills": each.fills,
        "openOrders": each.open_orders,
        "positions": [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in each.positions],
        "realizedPnl": money_document(each.realized_pnl),
        "unrealizedPnl": money_document(each.unrealized_pnl),
        "totalPnl": money_document(each.total_pnl),
        "risk": {"state": each.risk_state, "reason": each.risk_reason},
        "limits": [
            {
                "limit": u.limit,
                "used": f"{u.used:f}",
                "allowed": f"{u.allowed.normalize():f}",
                "unit": u.unit,
                "fraction": round(u.fraction, 4),
                # maxDailyLoss when the status's daily PnL is of an earlier day on a live feed: that day, its loss
                **(
                    {"ofDay": u.of_day, "shown": f"{u.shown:f}"} if u.of_day is not None and u.shown is not None else {}
                ),
            }
            for u in each.limits
        ],
        "nearestLimit": nearest.limit if nearest else None,
        "lastFill": each.last_fill.model_dump(mode="json", by_alias=True) if each.last_fill else None,
        "haltAnnotation": each.halt_note,
        "budget": None if budget is None else {"name": budget.budget, "weight": budget.weight},
        "problem": each.problem,
    }


def fleet_document(rows: Iterable[StrategyRow], now: datetime) -> dict[str, Any]:
    rows = list(rows)
    return {
        "strategies": [row_document(each, now) for each in rows],
        "totalsByCurrency": {
            currency: f"{amount:f}" for currency, amount in totals_by_currency(rows, "total_pnl").items()
        },
    }


def status_document(
    each: StrategyRow, events: Sequence[Mapping[str, Any]], pod: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    document = row_document(each, now)
    document["conditions"] = [
        c.model_dump(mode="json", by_alias=True, exclude_none=True) | {"message": scrub_text(c.message)}
        for c in each.conditions
    ]
    document["halt"] = each.status.halt.model_dump(mode="json", by_alias=True) if each.status.halt else None
    share = each.status.budget  # its share of its RiskBudget's limits, whole (docs/risk-budgets.md, "Shares")
    document["budgetShare"] = share.model_dump(mode="json", by_alias=True, exclude_none=True) if share else None
    promotion = each.status.promotion
    document["promotion"] = promotion.model_dump(mode="json", by_alias=True) if promotion is not None else None
    document["events"] = [
        {
            "type": e.get("type"),
            "reason": e.get("reason"),
            "message": scrub_text(str(e.get("message") or "")),
            "count": e.get("count"),
            "lastTimestamp": e.get("lastTimestamp") or e.get("eventTime"),
        }
        for e in events
    ]
    document["pod"] = (
        None
        if pod is None
        else {
            "name": (pod.get("metadata") or {}).get("name"),
            "phase": (pod.get("status") or {}).get("phase"),
            "containerStatuses": (pod.get("status") or {}).get("containerStatuses") or [],
            "nodeName": (pod.get("spec") or {}).get("nodeName"),
        }
    )
    return document


FILL_COLUMNS = ("ts_event", "instrument_id", "side", "quantity", "price", "commission", "trade_id")


def fills_view(fills: Sequence[Mapping[str, Any]], key: str, where: str, of: int | None = None) -> RenderableType:
    """Fills as the ledger holds them (rows of ``strategy_runtime.ledger.export.fill_to_json``)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in FILL_COLUMNS:
        table.add_column(column.upper(), no_wrap=True)
    for fill in fills:
        table.add_row(*(str(fill.get(column, "")) for column in FILL_COLUMNS))
    title = (
        f"{len(fills)} fill(s) of {key} in {where}"
        if of is None
        else f"last {len(fills)} of {of} fill(s) of {key} in {where}"
    )
    return Group(Text(""), Text(title, style="bold"), table)
