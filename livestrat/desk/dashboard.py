"""``livestrat desk``: the fleet of LiveStrategies live in a terminal, and the desk's actions on it (Textual).

One row per strategy (heartbeat age, mode, phase, position, PnL, risk state and the nearest limit, last fill),
redrawn whenever its :class:`Source` says the set changed and every second (ages grow while nothing changes); a
detail pane for the selected strategy; ``h`` halt, ``r`` resume, ``a`` acknowledge a risk halt, each confirmed in
a dialog that says what will happen before anything is done; ``s`` changes the order (:data:`fleet.SORTS`).

The RiskBudgets in view (when the source holds them: the cluster's, watched as the strategies are) have a panel of
their own under the fleet, one line per budget as ``kubectl livestrat budgets`` prints it (its state and policy,
exposure, daily PnL, each limit used vs allowed), red-bordered while one is breached; a member's detail pane shows
its budget as ``kubectl livestrat budgets NAME`` does, with every member's figures (:mod:`livestrat.desk.budget_views`).

Where the strategies come from is a :class:`Source`: the cluster's LiveStrategies (a watch through the user's
kubeconfig), or a local ``livestrat run --desk`` whose runtime is shown as the cluster would show it. What an
action does is a :class:`Controls`: the desk's actions on the API server, or the local run's (a halt stops the
run as Ctrl-C does). Rows are read with :func:`livestrat.desk.fleet.row`, the same rows ``kubectl livestrat``
prints.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Label, Static

from livestrat.api import budget_resource
from livestrat.api.resource import KIND
from livestrat.api.status import Fill, Phase, RiskStateName
from livestrat.desk import budgets
from livestrat.desk.budget_views import budget_view, budgets_view
from livestrat.desk.budgets import BudgetRow
from livestrat.desk.fleet import (
    SORTS,
    LimitUse,
    StrategyRow,
    money_text,
    parse_time,
    row,
    sort_rows,
    totals_by_currency,
)
from livestrat.desk.twins import TwinComparison, find_twin
from livestrat.desk.views import age, budget_share_text

HALT, RESUME, ACK_RISK = "halt", "resume", "ack-risk"
LAST_FILLS_KEPT = 5  # per strategy, in the detail pane: the fills the desk saw go by, newest first
# A limit this far used is shown as a warning; at 1.0 it is breached.
LIMIT_WARNING = 0.8

COLUMNS: tuple[tuple[str, str], ...] = (
    ("strategy", "STRATEGY"),
    ("heartbeat", "HEARTBEAT"),
    ("mode", "MODE"),
    ("phase", "PHASE"),
    ("position", "POSITION"),
    ("pnl", "PNL"),
    ("risk", "RISK"),
    ("limit", "NEAREST LIMIT"),
    ("fill", "LAST FILL"),
)
STALE_STYLE = "bold red"
FRESH_STYLE = "green"
PHASE_STYLES: dict[str, str] = {
    Phase.RUNNING: "green",
    Phase.STARTING: "cyan",
    Phase.PENDING: "cyan",
    Phase.HALTING: "yellow",
    Phase.HALTED: "yellow",
    Phase.RISK_HALTED: "bold red",
    Phase.INVALID: "bold red",
    Phase.FAILED: "bold red",
}
RISK_STYLES: dict[str, str] = {
    RiskStateName.ACTIVE: "green",
    RiskStateName.REDUCING: "yellow",
    RiskStateName.HALTED: "bold red",
}


Body = Mapping[str, Any]


class Source(Protocol):
    """Where the dashboard's LiveStrategies (and the RiskBudgets they belong to, when it has them) come from."""

    title: str  # where, in a few words: "context gke-prod, all namespaces", "local run NS-run-STAMP/NAME"
    trouble: str | None  # why what is shown may be out of date (a watch that failed and is retried), or None
    note: str | None  # what is not shown and why, in one line (a right the user lacks), or None

    def snapshots(self) -> AsyncIterator[Sequence[Body]]:
        """The whole current set of LiveStrategies and RiskBudgets (as the API server returns them, told apart by
        ``kind``), each time it changed."""
        ...


class ActionUnavailable(Exception):
    """The action cannot be done to this strategy, and why (shown to the person, nothing is done)."""


class ActionFailed(Exception):
    """The action was tried and did not happen, and why (shown to the person)."""


@dataclass(frozen=True)
class Plan:
    """One action on one strategy: what it will do, said before it is done, and the doing."""

    action: str  # halt, resume, ack-risk
    strategy: str  # NAMESPACE/NAME
    will: str  # what will happen, in words: the confirmation dialog shows it
    run: Callable[[], Awaitable[str]]  # does it; returns what it did; ActionFailed when it could not


class Controls(Protocol):
    async def plan(self, action: str, body: Body) -> Plan:
        """The action on this strategy, not done yet (it may read the strategy afresh to say what it will do);
        ActionUnavailable when it does not apply or cannot be planned."""
        ...


class MemorySource:
    """LiveStrategies (and RiskBudgets) held in memory, handed to the dashboard whole at each change.

    What a local run feeds (its runtime's status, shaped as the cluster's), and what tests drive. Changes made
    faster than the dashboard reads them are coalesced: it sees the latest set. One reader.
    """

    def __init__(self, title: str, bodies: Iterable[Body] = ()) -> None:
        self.title = title
        self.trouble: str | None = None
        self.note: str | None = None
        self._bodies: dict[tuple[str, str, str], Body] = {}
        self._changed = asyncio.Event()
        self._closed = False
        for body in bodies:
            self.put(body)

    @staticmethod
    def _key(body: Body) -> tuple[str, str, str]:
        meta = body.get("metadata") or {}
        return str(body.get("kind") or KIND), str(meta.get("namespace") or ""), str(meta.get("name") or "")

    def put(self, body: Body) -> None:
        """Add or replace a LiveStrategy, or a RiskBudget (by kind, namespace and name)."""
        self._bodies[self._key(body)] = body
        self._changed.set()

    def remove(self, namespace: str, name: str, kind: str = KIND) -> None:
        self._bodies.pop((kind, namespace, name), None)
        self._changed.set()

    def held(self, kind: str = KIND) -> list[tuple[str, str]]:
        """(namespace, name) of each object of ``kind`` held."""
        return [(namespace, name) for held_kind, namespace, name in self._bodies if held_kind == kind]

    def get(self, namespace: str, name: str, kind: str = KIND) -> Body | None:
        return self._bodies.get((kind, namespace, name))

    def set_trouble(self, trouble: str | None) -> None:
        """Why the set may be out of date (None: it is not); the reader is told as of a change."""
        self.trouble = trouble
        self._changed.set()

    def set_note(self, note: str | None) -> None:
        """What is not shown and why, in one line (None: everything is); the reader is told as of a change."""
        self.note = note
        self._changed.set()

    def close(self) -> None:
        """No more changes: the reader gets the last set and the iteration ends."""
        self._closed = True
        self._changed.set()

    async def snapshots(self) -> AsyncIterator[Sequence[Body]]:
        while True:
            self._changed.clear()
            yield list(self._bodies.values())
            if self._closed:
                return
            await self._changed.wait()


# ------------------------------------------------------------------------------------------------ cells


def heartbeat_cell(each: StrategyRow, now: datetime) -> Text:
    elapsed = each.heartbeat_age(now)
    if each.stale(now):
        return Text(f"{age(elapsed)} STALE" if elapsed is not None else "none STALE", style=STALE_STYLE)
    if elapsed is None:
        return Text("-", style="dim")
    return Text(age(elapsed), style=FRESH_STYLE if each.replicas else "dim")


def position_text(each: StrategyRow) -> str:
    held = [p for p in each.positions if p.side != "FLAT"]
    if not held:
        return "flat"
    first = held[0]
    sign = "-" if first.side == "SHORT" else "+"
    more = f" (+{len(held) - 1} more)" if len(held) > 1 else ""
    return f"{sign}{first.quantity} {first.instrument}{more}"


def pnl_cell(each: StrategyRow) -> Text:
    if not each.total_pnl:
        return Text("-", style="dim")
    negative = any(amount < 0 for amount in each.total_pnl.values())
    return Text(money_text(each.total_pnl), style="red" if negative else "green")


def limit_style(use: LimitUse) -> str:
    if use.fraction >= 1:
        return "bold red"
    return "yellow" if use.fraction >= LIMIT_WARNING else ""


def limit_cell(each: StrategyRow) -> Text:
    risk = each.status.risk
    if each.risk_state != RiskStateName.ACTIVE and risk is not None and risk.breached_limit:
        # After a breach the limit that broke is the news, not the one nearest now (a flattened position uses none).
        return Text(f"breached {risk.breached_limit}", style="bold red")
    nearest = each.nearest_limit
    if nearest is None:
        return Text("no limits", style="dim")
    return Text(nearest.text(), style=limit_style(nearest))


def budgets_text(rows: Iterable[StrategyRow]) -> str | None:
    """The RiskBudgets the strategies in view are members of (their status.budget), with how many members each has
    here: ``budgets: ns/account-a 2 members, ns/account-b 1 member reduce-only``. None when no strategy is a member.
    What the totals say when the source holds no RiskBudget objects (a local run, a user who may not list them)."""
    members: dict[str, int] = {}
    reduce_only: set[str] = set()
    for each in rows:
        share = each.status.budget
        if share is None:
            continue
        key = f"{each.namespace}/{share.budget}"
        members[key] = members.get(key, 0) + 1
        if share.reduce_only:
            reduce_only.add(key)
    if not members:
        return None
    return "budgets: " + ", ".join(
        f"{key} {count} member{'s' if count != 1 else ''}" + (" reduce-only" if key in reduce_only else "")
        for key, count in sorted(members.items())
    )


def fill_text(fill: Fill | None) -> str:
    if fill is None:
        return "-"
    return f"{fill.side} {fill.quantity} {fill.instrument} @ {fill.price}"


def cells(each: StrategyRow, now: datetime) -> dict[str, RenderableType]:
    return {
        "strategy": each.key,
        "heartbeat": heartbeat_cell(each, now),
        "mode": each.mode,
        "phase": Text(each.phase, style=PHASE_STYLES.get(each.phase, "")),
        "position": position_text(each),
        "pnl": pnl_cell(each),
        "risk": Text(each.risk_state, style=RISK_STYLES.get(each.risk_state, "")),
        "limit": limit_cell(each),
        "fill": fill_text(each.last_fill),
    }


# ------------------------------------------------------------------------------------------------ detail


def _age_since(text: str | None, now: datetime) -> str:
    when = parse_time(text)
    return age(max(now - when, timedelta(0))) + " ago" if when is not None else "-"


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def detail(
    each: StrategyRow,
    fills: Sequence[Fill],
    now: datetime,
    member_of: Sequence[BudgetRow] = (),
    twin: StrategyRow | None = None,
) -> RenderableType:
    """The selected strategy's whole state: conditions, positions, limits used vs allowed, fills, halt record, the
    RiskBudgets it is a member of (``member_of``), each with every member's figures, and beside a live strategy its
    paper twin's figures (``twin``: spec.twin)."""
    parts: list[RenderableType] = []
    head = Text.assemble(
        (each.key, "bold"),
        f"  {each.mode} on {each.venue}  ",
        (each.phase, PHASE_STYLES.get(each.phase, "")),
        f"  pods {each.replicas}/{each.desired_replicas if each.desired_replicas is not None else '?'}",
    )
    parts.append(head)
    if each.message:
        parts.append(Text(each.message))
    if each.problem:
        parts.append(Text(f"does not read: {each.problem}", style="bold red"))

    parts.append(_section("Conditions"))
    if each.conditions:
        table = Table("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE", box=None, pad_edge=False)
        for c in each.conditions:
            style = "bold" if c.status == "True" else "dim"
            table.add_row(
                c.type, Text(c.status, style=style), c.reason, _age_since(c.last_transition_time, now), c.message
            )
        parts.append(table)
    else:
        parts.append(Text("none reported", style="dim"))

    parts.append(_section("Positions"))
    held = [p for p in each.positions if p.side != "FLAT"]
    if held:
        table = Table("INSTRUMENT", "SIDE", "QUANTITY", "AVG PRICE", "UNREALIZED", box=None, pad_edge=False)
        for p in held:
            table.add_row(p.instrument, p.side, p.quantity, p.avg_price or "-", p.unrealized_pnl or "-")
        parts.append(table)
    else:
        parts.append(Text("flat"))
    parts.append(
        Text(
            f"open orders {each.open_orders}   fills {each.fills}   realized {money_text(each.realized_pnl)}   "
            f"unrealized {money_text(each.unrealized_pnl)}   total {money_text(each.total_pnl)}"
        )
    )

    if twin is not None:
        parts.append(_section("Live vs paper twin"))
        parts.append(TwinComparison.of(each, twin).table())

    parts.append(_section("Risk"))
    risk = Text.assemble(("state ", ""), (each.risk_state, RISK_STYLES.get(each.risk_state, "")))
    if each.risk_reason:
        risk.append(f": {each.risk_reason}")
    breach = each.status.risk
    if breach is not None and breach.breached_limit:
        risk.append(f"\nbreached {breach.breached_limit} at {breach.breached_at or '?'}", style="bold red")
        risk.append(f" (market time {breach.breached_at_market})" if breach.breached_at_market else "")
    parts.append(risk)
    share = budget_share_text(each)
    if share is not None:  # a member of a RiskBudget: its share of each limit, held at its order gate
        parts.append(Text(share, style="bold yellow" if each.status.budget and each.status.budget.reduce_only else ""))
    if each.limits:
        table = Table("LIMIT", "USED", "ALLOWED", "USE", box=None, pad_edge=False)
        for use in each.limits:
            unit = f" {use.unit}" if use.unit else ""
            table.add_row(
                use.limit,
                f"{use.used:f}{unit}",
                f"{use.allowed.normalize():f}{unit}",
                Text(f"{use.fraction:.0%}", style=limit_style(use)),
            )
        parts.append(table)
    else:
        parts.append(Text("no post-trade limits reported", style="dim"))

    parts.append(_section("Last fills"))
    if fills:
        table = Table("TIME", "SIDE", "QUANTITY", "INSTRUMENT", "PRICE", "TRADE ID", box=None, pad_edge=False)
        for f in fills:
            table.add_row(f.time, f.side, f.quantity, f.instrument, f.price, f.trade_id)
        parts.append(table)
    else:
        parts.append(Text("none seen", style="dim"))

    parts.append(_section("Halt"))
    halt = each.status.halt
    if halt is not None:
        parts.append(Text(f"{halt.reason} since {halt.since} ({_age_since(halt.since, now)}): {halt.message}"))
    else:
        parts.append(Text("not halted", style="dim"))
    if each.halt_note:
        parts.append(Text(f"desk note: {each.halt_note}"))
    for budget in member_of:
        parts += [_section("Budget"), budget_view(budget)]
    return Group(*parts)


def budgets_of(each: StrategyRow, rows: Iterable[BudgetRow]) -> list[BudgetRow]:
    """The RiskBudgets in view that ``each`` is a member of: named by its status.budget, or listing it in theirs."""
    share = each.status.budget
    return [
        budget
        for budget in rows
        if budget.namespace == each.namespace
        and (
            (share is not None and share.budget == budget.name)
            or any(member.name == each.name for member in budget.member_rows)
        )
    ]


# ------------------------------------------------------------------------------------------------ the app


class ConfirmAction(ModalScreen[bool]):
    """Says what the action will do; ``y`` (or the button) does it, ``n``/Escape does nothing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"{self.plan.action} {self.plan.strategy}?", id="question")
            yield Static(self.plan.will, id="will")
            with Horizontal(id="answers"):
                yield Button(f"Yes, {self.plan.action} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # Enter on the dialog does nothing by accident

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Dashboard(App[None]):
    """The fleet table, its totals, and the selected strategy's detail."""

    # Here rather than in a .tcss file: the package installs its Python modules only.
    CSS = """
#fleet {
    height: auto;
    max-height: 50%;
}

#budgets {
    height: auto;
    max-height: 30%;
    padding: 0 1;
    border-top: solid $primary;
}

#budgets.breached {
    border: heavy $error;
}

#totals {
    height: 1;
    padding: 0 1;
    background: $boost;
}

#detail-pane {
    height: 1fr;
    padding: 0 1;
    border-top: solid $primary;
}

ConfirmAction {
    align: center middle;
}

#dialog {
    padding: 1 2;
    width: 80;
    height: auto;
    max-height: 80%;
    border: thick $error;
    background: $surface;
}

#question {
    text-style: bold;
    margin-bottom: 1;
}

#will {
    height: auto;
    margin-bottom: 1;
}

#answers {
    height: auto;
}

#answers Button {
    width: 1fr;
    margin: 0 1;
}
"""
    TITLE = "livestrat desk"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", f"act('{HALT}')", "Halt"),
        Binding("r", f"act('{RESUME}')", "Resume"),
        Binding("a", f"act('{ACK_RISK}')", "Ack risk"),
        Binding("s", "sort", "Sort"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, source: Source, controls: Controls, *, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.source = source
        self.controls = controls
        self.clock = clock
        self.rows: dict[str, StrategyRow] = {}
        self.bodies: dict[str, Body] = {}
        self.budgets: dict[str, BudgetRow] = {}  # the RiskBudgets in view, by NAMESPACE/NAME
        self.fills: dict[str, deque[Fill]] = {}
        self.selected: str | None = None
        self.sort = "name"  # one of fleet.SORTS, as kubectl livestrat list --sort
        self.sub_title = source.title

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        yield Static(id="budgets")
        yield Static(id="totals")
        with VerticalScroll(id="detail-pane"):
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#fleet", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.run_worker(self._follow(), name="source", exclusive=True)
        self.set_interval(1.0, self.redraw)  # heartbeat ages grow while nothing changes

    async def _follow(self) -> None:
        async for bodies in self.source.snapshots():
            self.show(bodies)

    def show(self, bodies: Sequence[Body]) -> None:
        """A new set of LiveStrategies and RiskBudgets from the source: redraw."""
        now = self.clock()
        rows = {}
        held_budgets = [budgets.row(b) for b in bodies if b.get("kind") == budget_resource.KIND]
        self.budgets = {each.key: each for each in sorted(held_budgets, key=lambda b: b.key)}
        for body in bodies:
            if body.get("kind") == budget_resource.KIND:
                continue
            each = row(body, now)
            rows[each.key] = each
            self.bodies[each.key] = body
            self._remember_fill(each)
        for gone in set(self.bodies) - set(rows):
            self.bodies.pop(gone, None)
            self.fills.pop(gone, None)
        self.rows = {each.key: each for each in sort_rows(rows.values(), self.sort)}
        if self._fleet_table() is None:
            return  # closing
        self._draw_budgets()  # here, not in redraw: the panel has no age in it, so it changes only with the set
        self.redraw()

    def action_sort(self) -> None:
        """The next order of fleet.SORTS (name, namespace, phase, pnl, risk, ...)."""
        orders = list(SORTS)
        self.sort = orders[(orders.index(self.sort) + 1) % len(orders)]
        self.rows = {each.key: each for each in sort_rows(self.rows.values(), self.sort)}
        self.redraw()
        self.notify(f"sorted by {self.sort}")

    def _remember_fill(self, each: StrategyRow) -> None:
        fill = each.last_fill
        if fill is None:
            return
        seen = self.fills.setdefault(each.key, deque(maxlen=LAST_FILLS_KEPT))
        if all(f.trade_id != fill.trade_id for f in seen):
            seen.appendleft(fill)

    def _fleet_table(self) -> DataTable | None:
        """The fleet table; None once the app is closing: Textual removes the screen's widgets before it stops the
        app's timers and workers, so the once-a-second redraw or the source's next set may still come."""
        try:
            return self.query_one("#fleet", DataTable)
        except NoMatches:
            return None

    def redraw(self) -> None:
        now = self.clock()
        table = self._fleet_table()
        if table is None:
            return  # closing
        shown = [str(key.value) for key in table.rows]
        if shown != list(self.rows):
            # Strategies came or went: rebuild in order, keeping the cursor on the strategy it was on.
            table.clear()
            for key, each in self.rows.items():
                values = cells(each, now)
                table.add_row(*(values[c] for c, _ in COLUMNS), key=key)
            if self.selected in self.rows:
                table.move_cursor(row=list(self.rows).index(self.selected))
        else:
            for key, each in self.rows.items():
                for column, value in cells(each, now).items():
                    table.update_cell(key, column, value, update_width=True)
        if self.selected not in self.rows:
            self.selected = next(iter(self.rows), None) if table.cursor_row < 0 else self._key_at(table.cursor_row)
        self._draw_totals(now)
        self._draw_detail(now)

    def _draw_budgets(self) -> None:
        panel = self.query_one("#budgets", Static)
        note = self.source.note  # e.g. the user may not list RiskBudgets: said where they would be
        panel.display = bool(self.budgets) or bool(note)
        panel.set_class(any(each.breached for each in self.budgets.values()), "breached")
        if self.budgets:
            panel.update(budgets_view(list(self.budgets.values())))
        elif note:
            panel.update(Text(note, style="yellow"))

    def _key_at(self, index: int) -> str | None:
        keys = list(self.rows)
        return keys[index] if 0 <= index < len(keys) else None

    def _draw_totals(self, now: datetime) -> None:
        rows = list(self.rows.values())
        stale = sum(1 for each in rows if each.stale(now))
        halted = sum(1 for each in rows if each.phase in (Phase.HALTED, Phase.RISK_HALTED))
        text = Text.assemble(
            f"{len(rows)} {'strategy' if len(rows) == 1 else 'strategies'}   ",
            f"total PnL {money_text(totals_by_currency(rows))}   ",
            (f"{stale} stale", STALE_STYLE if stale else ""),
            f"   {halted} halted",
        )
        if self.budgets:
            held, breached = len(self.budgets), sum(1 for each in self.budgets.values() if each.breached)
            text.append(f"   {held} budget{'s' if held != 1 else ''}, ")
            text.append(f"{breached} breached", style="bold red" if breached else "")
        else:
            shares = budgets_text(rows)
            if shares is not None:
                text.append(f"   {shares}")
        text.append(f"   sorted by {self.sort} (s)", style="dim")
        if self.source.trouble:
            text.append(f"   {self.source.trouble}", style="bold red")

        self.query_one("#totals", Static).update(text)

    def _draw_detail(self, now: datetime) -> None:
        pane = self.query_one("#detail", Static)
        each = self.rows.get(self.selected) if self.selected else None
        if each is None:
            pane.update(Text("no strategy selected", style="dim"))
            return
        member_of = budgets_of(each, self.budgets.values())
        twin = find_twin(each, self.rows.values()) if each.mode == "live" else None
        pane.update(detail(each, list(self.fills.get(each.key, ())), now, member_of, twin))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self._draw_detail(self.clock())

    # -------------------------------------------------------------------------------------------- actions

    def action_act(self, action: str) -> None:
        body = self.bodies.get(self.selected) if self.selected else None
        if body is None:
            self.notify("select a strategy first", severity="warning")
            return
        self.run_worker(self._ask(action, body, self.selected), name=f"plan {action}", group="actions")

    async def _ask(self, action: str, body: Body, key: str | None) -> None:
        """Plan the action, show what it will do, and do it only on a yes."""
        try:
            plan = await self.controls.plan(action, body)
        except ActionUnavailable as exc:
            self.notify(f"{action} {key}: {exc}", severity="warning", timeout=8)
            return
        if not await self.push_screen_wait(ConfirmAction(plan)):
            self.notify(f"{plan.action} {plan.strategy}: cancelled, nothing done")
            return
        try:
            done = await plan.run()
        except ActionFailed as exc:
            self.notify(f"{plan.action} {plan.strategy} failed: {exc}", severity="error", timeout=15)
            return
        self.notify(done, timeout=8)
