"""Start-up reconciliation as a live runtime needs it: every fill the venue reports kept, and reports that agree.

**Every reported fill is kept.** NautilusTrader 1.231's live execution engine, before it reconciles a
venue's mass status, "adjusts fills for instruments with incomplete first lifecycles"
(``LiveExecutionEngine._adjust_mass_status_fills``, ``live.reconciliation.adjust_fills_for_partial_window``):
for every instrument the venue reports a position for (futures), it keeps only the fills of the
position's current lifecycle, since it was last flat, and may put a synthetic fill in front of them.
Fills of earlier lifecycles are dropped. For a runtime those are real trades: a strategy killed while
the venue filled its resting orders, flat again by the time it restarts, would never record them
(``tests/live/test_usdm_story.py`` lost two of 37 fills over twenty ``kill -9``). The ledger must hold
every trade of the venue, so a live node skips the adjustment (``keep_every_reported_fill``): every
reported fill is applied, and the position the fills make is then reconciled with the venue's report as
before (a difference, such as a position older than the trade history the venue returns, is closed by
the engine's inferred fill, which the reporter records under a marked id).

**The trades, then the order statuses, then the trades the statuses are ahead of**
(``ask_in_order``). NautilusTrader 1.231's ``LiveExecutionClient.generate_mass_status`` asks the venue
for order statuses, trades and positions side by side (``asyncio.gather``). An order the venue fills
between two of those answers comes back one of two ways, and the engine (``live/execution_engine.py``)
handles them very differently:

- *status ahead of the trades* (the trade list was answered first): the order is FILLED (or filled
  further) without its trade; ``_handle_fill_quantity_mismatch`` infers a fill for the difference
  (``report.filled_qty - order.filled_qty``: never more than the status says), and the venue's own trade
  comes later, on the user-data stream or at the next start. The runtime's ledger supersedes the
  inferred fill with it (``ledger.supersede``): counted once. Harmless, and it heals.
- *trades ahead of the status* (the status was answered first): for an order reported NEW
  (``ACCEPTED``), ``_handle_order_status_transitions`` returns before the order's trades are reconciled:
  the reported trade is ignored and the node holds the order open; for one reported PARTIALLY_FILLED, the
  trades are applied and then ``report.filled_qty < order.filled_qty`` fails the whole reconciliation
  ("could potentially be caused by duplicate fills or corrupted cached state"): the node does not start.

So the runtime asks one thing after another, never side by side: the trades first, then the order
statuses, so that a fill landing between them can only put a status ahead of its trades, never the
reverse; then the positions, right away. Then, for the orders whose status is ahead of the trades listed
for it *and* changed at or after the moment the trades were asked (``changed_since``: only those can
have met a fill that landed in between; an older FILLED order whose trades are beyond the trade list's
reach is ahead at every start, and asking again would find nothing), the trades once more, of every
instrument in one question (NautilusTrader 1.231's Binance client asks every symbol whatever instrument
it is given), keeping of each such order only the trades its status accounts for (in the venue's order,
up to its filled quantity), so the two still agree. A failure of that second question is logged and
reconciliation goes on without it. What is still missing after that is inferred by the engine and
superseded in the ledger when the trades come. Pinned: ``test_nautilus_pins`` checks that 1.231's method
still asks side by side what this one asks in turn.

The positions go with the statuses they were asked with (``_positions_with_their_statuses``): a fill landing
between the statuses and the positions (USD-M) would put the position report ahead, the engine would align the
node's position with a made-up fill (``INFERRED-POSITION-…``, which belongs to no venue order and is not
superseded), and the order's trade would count the quantity a second time. Where the venue reports positions,
the statuses are asked once more after them; when an order moved, both again (``POSITION_ASKS``), and the pair
that held still is reconciled. An answer that lacks an order the one before held is a failed or partial one
(NautilusTrader's Binance client answers a failed question with no statuses): the earlier statuses are kept.
Asking the positions before the statuses would turn the same race into an undercount (docs/runtime.md,
"Reconciliation asks in turn").

Only the start's reconciliation asks the positions (``start_reconciled``): NautilusTrader 1.231's Binance client
asks a mass status again after every user-data resubscription, while the strategy trades, and a position report
taken then races the fills the node meets on the stream.

What this cannot prevent: the fill's own event on the user-data stream, which the client has open
while it reconciles, reaches a node that does not know the order yet; NautilusTrader 1.231's Binance
client then hands the engine an order status report built from it, and the engine infers the fill
before the mass status is reconciled, then drops the mass status's reports of that order (it holds the
order already). The trades a mass status lists are therefore published as the venue answered them
(``LISTED_TRADES_TOPIC``); the reporter records those of an order it inferred a fill of, and the ledger
lets them supersede the inferred fill (``tests/live/test_both_markets.py``, the fill that
lands between the queries, checked after the start that meets it and after the next one).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import (
    GenerateFillReports,
    GenerateOrderStatusReports,
    GeneratePositionStatusReports,
)
from nautilus_trader.execution.reports import ExecutionMassStatus, FillReport, OrderStatusReport, PositionStatusReport
from nautilus_trader.live.execution_client import LiveExecutionClient

logger = logging.getLogger("livestrat.reconciliation")

ADJUST_FILLS_METHOD = "_adjust_mass_status_fills"  # NautilusTrader 1.231, pinned by test_binance_reconciliation
# LiveExecutionClient's method that asks the venue for its mass status (1.231: side by side); pinned by
# test_nautilus_pins.
MASS_STATUS_METHOD = "generate_mass_status"
# Where the trades a mass status listed are published (``.<venue>``), as the venue answered them: the engine drops
# the reports of an order its cache holds already (``_deduplicate_mass_status_orders``) before it publishes the mass
# status; the reporter records those of an order it inferred a fill of.
LISTED_TRADES_TOPIC = "livestrat.reconciliation.trades"
# How much earlier than the moment the trades were asked an order status may say it last changed and still be one that
# met a fill landing after that moment (the venue stamps it with its own clock).
CLOCK_TOLERANCE_NS = 1_000_000_000


def keep_every_reported_fill(exec_engine: Any) -> None:
    """Turn off the engine's adjustment of reported fills to the last position lifecycle (module docstring)."""

    def apply_every_fill(_mass_status: Any) -> None:
        return None

    setattr(exec_engine, ADJUST_FILLS_METHOD, apply_every_fill)


def _filled(fills: list[FillReport]) -> Decimal:
    return sum((f.last_qty.as_decimal() for f in fills), Decimal(0))


def behind(orders: list[OrderStatusReport], fills: list[FillReport]) -> list[OrderStatusReport]:
    """The order statuses ahead of the trades listed for them (filled further than those trades make), one per
    order (the furthest: a client may report an order twice, from its open orders and from all of them)."""
    by_order: dict[Any, list[FillReport]] = {}
    for fill in fills:
        by_order.setdefault(fill.venue_order_id, []).append(fill)
    furthest: dict[Any, OrderStatusReport] = {}
    for order in orders:
        seen = furthest.get(order.venue_order_id)
        if seen is None or order.filled_qty > seen.filled_qty:
            furthest[order.venue_order_id] = order
    return [o for o in furthest.values() if o.filled_qty.as_decimal() > _filled(by_order.get(o.venue_order_id, []))]


def venue_order(fill: FillReport) -> tuple[int, int, int | str]:
    """Where a trade stands in its venue's order: by time, then by trade id, a numeric one as a number (Binance's:
    "10" comes after "9")."""
    trade_id = str(getattr(fill.trade_id, "value", fill.trade_id))
    return (fill.ts_event, 0, int(trade_id)) if trade_id.isdigit() else (fill.ts_event, 1, trade_id)


def catch_up(order: OrderStatusReport, known: list[FillReport], listed: list[FillReport]) -> list[FillReport]:
    """Of the trades ``listed`` now for ``order``, those to add to the ``known`` ones: the next ones in the venue's
    order (``venue_order``), as long as the status accounts for them."""
    have = {f.trade_id for f in known}
    room = order.filled_qty.as_decimal() - _filled(known)
    added = []
    candidates = [f for f in listed if f.venue_order_id == order.venue_order_id and f.trade_id not in have]
    for fill in sorted(candidates, key=venue_order):
        quantity = fill.last_qty.as_decimal()
        if quantity > room:
            break  # a later fill than the status: left for the stream or the next start
        added.append(fill)
        room -= quantity
    return added


def changed_since(orders: list[OrderStatusReport], moment_ns: int) -> list[OrderStatusReport]:
    """The order statuses last changed at or after ``moment_ns`` (less ``CLOCK_TOLERANCE_NS``: the venue's clock and
    this one differ): only those can have met a fill that landed after the trades were asked."""
    return [o for o in orders if o.ts_last >= moment_ns - CLOCK_TOLERANCE_NS]


async def _catch_up(
    client: Any,
    fills_command: Callable[[], Any],
    orders: list[OrderStatusReport],
    fills: list[FillReport],
    asked_at: int,
) -> list[FillReport]:
    """The trades to add for the statuses ahead of the trades listed, that changed after those were asked: the trades
    asked once more (of every instrument: NautilusTrader 1.231's Binance client asks every symbol whatever it is
    given), as each status accounts for them. A failure to ask is logged: reconciliation goes on without them."""
    ahead = behind(changed_since(orders, asked_at), fills)
    if not ahead:
        return []
    try:
        listed = list(await client.generate_fill_reports(fills_command()))
    except Exception as exc:
        logger.warning(
            "reconciliation: %d order status(es) ahead of the trades listed; asking the trades again failed (%r): "
            "NautilusTrader infers what is missing, the ledger supersedes it when the trades come",
            len(ahead),
            exc,
        )
        return []
    added_all: list[FillReport] = []
    for order in ahead:
        known = [f for f in fills if f.venue_order_id == order.venue_order_id]
        added = catch_up(order, known, listed)
        added_all += added
        logger.warning(
            "reconciliation: the venue reported order %s (%s) filled to %s with trades of %s listed; "
            "asked again: %d more trade(s)%s",
            order.client_order_id,
            order.venue_order_id,
            order.filled_qty,
            _filled(known),
            len(added),
            ""
            if _filled(known + added) == order.filled_qty.as_decimal()
            else " (NautilusTrader infers the rest; the ledger supersedes it when the trades come)",
        )
    return added_all


def start_reconciled(exec_engine: Any) -> Callable[[], bool]:
    """Whether the node's start-up reconciliation is over: the engine's ``reconcile_execution_state`` (what the
    kernel awaits at start) wrapped to say when it returned. A mass status asked after that (the Binance client's
    after a user-data resubscription) leaves the positions out (module docstring)."""
    over = False
    reconcile = exec_engine.reconcile_execution_state

    async def reconcile_execution_state(*args: Any, **kwargs: Any) -> bool:
        nonlocal over
        try:
            return await reconcile(*args, **kwargs)
        finally:
            over = True

    exec_engine.reconcile_execution_state = reconcile_execution_state
    return lambda: over


def statuses_moved(before: list[OrderStatusReport], after: list[OrderStatusReport]) -> bool:
    """Whether an order changed between two answers of the statuses: one more or fewer, another status, more filled."""

    def state(reports: list[OrderStatusReport]) -> set[tuple[Any, Any, Decimal]]:
        return {(r.venue_order_id, r.order_status, r.filled_qty.as_decimal()) for r in reports}

    return state(before) != state(after)


def _lacking(before: list[OrderStatusReport], after: list[OrderStatusReport]) -> set[Any]:
    """The venue order ids ``before`` holds and ``after`` does not (a venue's order list only grows)."""
    return {r.venue_order_id for r in before} - {r.venue_order_id for r in after}


def ask_in_order(
    client: Any, *, reports_positions: bool = True, start_over: Callable[[], bool] = lambda: False
) -> bool:
    """Make ``client.generate_mass_status`` ask the venue one thing after another (module docstring); whether it
    did. Only a client that runs NautilusTrader's own method (side by side) is changed: an adapter with a
    ``generate_mass_status`` of its own (Interactive Brokers in 1.231) knows how its venue answers, and is left
    to it (logged). ``reports_positions``: the venue's positions are real (USD-M), so the statuses are asked again
    after them until they hold still; ``start_over``: whether the start's reconciliation is over (then the
    positions are not asked)."""
    own = getattr(type(client), MASS_STATUS_METHOD, None)
    if own is not getattr(LiveExecutionClient, MASS_STATUS_METHOD):
        logger.info(
            "reconciliation: %s has a %s of its own: left to it (the runtime asks in turn only in place of "
            "NautilusTrader's, which asks side by side)",
            type(client).__name__,
            MASS_STATUS_METHOD,
        )
        return False

    async def generate_mass_status(lookback_mins: int | None = None) -> ExecutionMassStatus | None:
        client._log.info("Generating ExecutionMassStatus (trades, then order statuses, then positions, in turn)...")
        client.reconciliation_active = True
        clock = client._clock
        since = clock.utc_now() - timedelta(minutes=lookback_mins) if lookback_mins is not None else None
        mass_status = ExecutionMassStatus(
            client_id=client.id,
            account_id=client.account_id,
            venue=client.venue,
            report_id=UUID4(),
            ts_init=clock.timestamp_ns(),
        )

        def fills_command() -> GenerateFillReports:
            return GenerateFillReports(
                instrument_id=None,
                venue_order_id=None,
                start=since,
                end=None,
                command_id=UUID4(),
                ts_init=clock.timestamp_ns(),
            )

        async def statuses() -> list[OrderStatusReport]:
            return await client.generate_order_status_reports(
                GenerateOrderStatusReports(
                    instrument_id=None,
                    start=since,
                    end=None,
                    open_only=False,
                    command_id=UUID4(),
                    ts_init=clock.timestamp_ns(),
                )
            )

        async def positions() -> list[PositionStatusReport]:
            return await client.generate_position_status_reports(
                GeneratePositionStatusReports(
                    instrument_id=None, start=since, end=None, command_id=UUID4(), ts_init=clock.timestamp_ns()
                )
            )

        try:
            asked_at = clock.timestamp_ns()
            fills = list(await client.generate_fill_reports(fills_command()))
            orders = await statuses()
            if start_over():
                client._log.info(
                    "Positions not asked: the start's reconciliation is over, the node's position is made of the "
                    "fills it meets (a position report taken while it trades races them)"
                )
                venue_positions: list[PositionStatusReport] = []
            elif not reports_positions:
                venue_positions = await positions()
            else:
                venue_positions, orders = await _positions_with_their_statuses(positions, statuses, orders)
            fills += await _catch_up(client, fills_command, orders, fills, asked_at)
            mass_status.add_order_reports(reports=orders)
            mass_status.add_fill_reports(reports=fills)
            client._msgbus.publish(topic=f"{LISTED_TRADES_TOPIC}.{client.venue}", msg=list(fills))
            mass_status.add_position_reports(reports=venue_positions)
            client.reconciliation_active = False
            return mass_status
        except Exception as e:
            client._log.exception("Cannot reconcile execution state", e)
        return None

    setattr(client, MASS_STATUS_METHOD, generate_mass_status)
    return True


# How many times the positions are asked before the statuses around them are taken as they are (a venue filling
# all along, the start then meets what NautilusTrader alone would meet: logged).
POSITION_ASKS = 3


async def _positions_with_their_statuses(
    positions: Callable[[], Awaitable[list[PositionStatusReport]]],
    statuses: Callable[[], Awaitable[list[OrderStatusReport]]],
    orders: list[OrderStatusReport],
) -> tuple[list[PositionStatusReport], list[OrderStatusReport]]:
    """The positions, and the statuses they go with: asked after ``orders``, then the statuses once more, and while
    those moved (an order filled in between: the positions may hold its fill, the statuses do not) the positions and
    the statuses again, up to ``POSITION_ASKS`` times."""
    for _ in range(POSITION_ASKS):
        venue_positions = await positions()
        after = await statuses()
        if not statuses_moved(orders, after):
            return venue_positions, after
        if lacking := _lacking(orders, after):
            # NautilusTrader 1.231's Binance client answers a failed question (a 429, a 5xx) with no statuses: an
            # answer without orders the one before held is not news, and must never replace it.
            logger.warning(
                "reconciliation: asked again, the venue's order statuses lack %d order(s) the first answer held (a "
                "failed or partial answer): the first answer is reconciled with these positions",
                len(lacking),
            )
            return venue_positions, orders
        logger.warning("reconciliation: an order changed while the positions were asked: both asked again")
        orders = after
    logger.warning(
        "reconciliation: the orders kept changing while the positions were asked (%d times): reconciled as last "
        "answered; a position alignment NautilusTrader makes now may count a fill twice (docs/runtime.md)",
        POSITION_ASKS,
    )
    return venue_positions, orders
