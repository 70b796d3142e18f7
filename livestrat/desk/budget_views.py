"""How the desk shows RiskBudgets (``kubectl livestrat budgets [NAME]``): Rich tables, and documents for -o json|yaml.

Everything shown comes from :class:`livestrat.desk.budgets.BudgetRow`, that is from the budget's status as the
operator wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from livestrat.api.budget_status import LimitUsage
from livestrat.desk.budgets import BudgetRow, MemberRow
from livestrat.desk.fleet import money_document, money_text
from livestrat.desk.redact import scrub_text

STATE_STYLES = {"Active": "green", "Breached": "bold red"}


def _money(amounts: Mapping[str, Decimal]) -> Text:
    negative = any(amount < 0 for amount in amounts.values())
    return Text(money_text(amounts), style="red" if negative else "")


def usage_text(usage: LimitUsage) -> str:
    """``maxDailyLoss 130.00 USDT/500 USDT (26%)``: one limit, used vs allowed."""
    return f"{usage.limit} {usage.used}/{usage.allowed} ({usage.percent}%)"


def _usage_style(percent: int) -> str:
    return "red" if percent >= 80 else ("yellow" if percent >= 50 else "")


def budgets_table(rows: Sequence[BudgetRow]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAMESPACE", "NAME", "MEMBERS", "STATE", "POLICY", "EXPOSURE", "DAILY PNL", "LIMITS"):
        table.add_column(column, no_wrap=column != "LIMITS")
    for each in rows:
        limits = Text(", ").join(Text(usage_text(u), style=_usage_style(u.percent)) for u in each.usage)
        table.add_row(
            each.namespace,
            each.name,
            each.members,
            Text(each.state, style=STATE_STYLES.get(each.state, "")),
            each.policy,
            _money(each.exposure),
            _money(each.daily_pnl),
            limits if each.usage else Text("-"),
        )
    return table


def budgets_view(rows: Sequence[BudgetRow]) -> RenderableType:
    if not rows:
        return Text("No RiskBudgets found.")
    breached = [each for each in rows if each.breached]
    parts: list[RenderableType] = [budgets_table(rows), Text("")]
    parts.append(Text(f"{len(rows)} budgets, {len(breached)} breached."))
    for each in breached:
        parts.append(Text(f"{each.key} is breached: acknowledge with {each.acknowledge_command}", style="red"))
    parts += [Text(f"! {each.key}: {each.problem}", style="yellow") for each in rows if each.problem]
    return Group(*parts)


def _members_table(members: Sequence[MemberRow]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ("MEMBER", "REPORTING", "PHASE", "WEIGHT", "EXPOSURE", "DAILY PNL", "DRAWDOWN", "OPEN ORDERS", "HALTED")
    for column in columns:
        table.add_column(column, no_wrap=True)
    table.add_column("NOTE")
    for member in members:
        table.add_row(
            member.name,
            "yes" if member.reporting else Text("no", style="yellow"),
            member.phase,
            f"{member.weight:.0%}" if member.weight is not None else "-",
            _money(member.gross_exposure),
            _money(member.daily_pnl),
            _money(member.drawdown),
            str(member.open_orders),
            Text("HALTED", style="bold red") if member.halted else "",
            scrub_text(member.note or ""),
        )
    return table


def _usage_table(usage: Sequence[LimitUsage]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("LIMIT", "USED", "ALLOWED", "USED %"):
        table.add_column(column, no_wrap=True)
    for each in usage:
        table.add_row(each.limit, each.used, each.allowed, Text(f"{each.percent}%", style=_usage_style(each.percent)))
    return table


def budget_view(each: BudgetRow) -> RenderableType:
    """One budget: its state and policy, used vs allowed per limit, its members' rows, and how to acknowledge."""
    parts: list[RenderableType] = [
        Text.assemble(
            (each.key, "bold"),
            f"  members {each.members}  ",
            (each.state, STATE_STYLES.get(each.state, "")),
            f"  onBreach {each.policy}  exposure {money_text(each.exposure)}  daily PnL {money_text(each.daily_pnl)}",
        )
    ]
    if each.message:
        parts.append(Text(scrub_text(each.message)))
    breach = each.status.breach
    if breach is not None:
        broke, halted = ", ".join(breach.limits), ", ".join(breach.halted) or "-"
        parts.append(Text(f"breached {broke} at {breach.breached_at}; halted: {halted}", style="bold red"))
        parts.append(Text(f"acknowledge: {each.acknowledge_command}", style="red"))
    parts += [Text(""), Text("Limits", style="bold underline")]
    parts.append(_usage_table(each.usage) if each.usage else Text("no usage reported yet"))
    parts += [Text(""), Text("Members", style="bold underline")]
    parts.append(_members_table(each.member_rows) if each.member_rows else Text("no member reported yet"))
    if each.problem:
        parts.append(Text(f"! {each.problem}", style="yellow"))
    return Group(*parts)


# ------------------------------------------------------------------------------------------------ documents


def member_document(member: MemberRow) -> dict[str, Any]:
    return {
        "name": member.name,
        "reporting": member.reporting,
        "phase": member.phase,
        "weight": member.weight,
        "grossExposure": money_document(member.gross_exposure),
        "dailyPnl": money_document(member.daily_pnl),
        "drawdown": money_document(member.drawdown),
        "openOrders": member.open_orders,
        "halted": member.halted,
        "note": member.note,
    }


def budget_document(each: BudgetRow, *, members: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "namespace": each.namespace,
        "name": each.name,
        "members": each.members,
        "state": each.state,
        "policy": each.policy,
        "currency": each.currency,
        "exposure": money_document(each.exposure),
        "dailyPnl": money_document(each.daily_pnl),
        "usage": [u.model_dump(mode="json", by_alias=True) for u in each.usage],
        "acknowledge": each.acknowledge_command,
        "problem": each.problem,
    }
    if members:
        document["memberRows"] = [member_document(m) for m in each.member_rows]
        breach = each.status.breach
        document["breach"] = breach.model_dump(mode="json", by_alias=True) if breach is not None else None
    return document


def budgets_document(rows: Sequence[BudgetRow]) -> dict[str, Any]:
    return {"budgets": [budget_document(each) for each in rows]}
