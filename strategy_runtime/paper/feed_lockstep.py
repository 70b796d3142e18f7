"""Paper on a live feed: the node takes the venue's data one point at a time, as a replay's lockstep does.

Without it, a paper node on a live feed fills an order on a later data point than a backtest of the same data:
the data client hands each data point to the data engine's queue, whose task takes every queued point in a row
without yielding to the event loop, while the order a strategy submits in ``on_bar`` goes through the RiskEngine's
and the execution engine's queues, which only run once the data queue is empty. Measured on the venue emulator's
feed (thirty one-minute bars arriving in a burst, tests/venue_emulator/test_paper_live_feed_backtest.py): the first
bar's order filled at its close, the other 29 all at the LAST bar's close, with trade ids hashed from that bar's
time, so that none of them matched the backtest's (``backtest_agreement``). A backtest matches each order before
the next data point reaches the venue; so does a paper replay, whose data client waits for the node's queues to
drain between points (``paper.replay``, lockstep). ``FeedLockstep`` does the same between the live data client and
the data engine: it takes the ``DataEngine.process`` endpoint, and hands the engine the next data point only once
every queue of the node (data, risk, execution) was seen empty twice in a row. A data point then waits for the
node to finish with the previous one: microseconds for a sandbox, which matches synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from nautilus_trader.model.data import Bar, OrderBookDelta, OrderBookDeltas, OrderBookDepth10, QuoteTick, TradeTick

if TYPE_CHECKING:
    from nautilus_trader.system.kernel import NautilusKernel

DATA_ENDPOINT = "DataEngine.process"
# What a simulated venue matches on: what must reach it one point at a time.
MARKET_DATA = (Bar, QuoteTick, TradeTick, OrderBookDelta, OrderBookDeltas, OrderBookDepth10)


def node_queues_busy(kernel: NautilusKernel) -> bool:
    """Anything handed to the node's engines and not yet processed (a live node's queues)."""
    return bool(
        kernel.data_engine.data_qsize()
        or kernel.data_engine.cmd_qsize()
        or kernel.data_engine.req_qsize()
        or kernel.data_engine.res_qsize()
        or kernel.risk_engine.cmd_qsize()
        or kernel.risk_engine.evt_qsize()
        or kernel.exec_engine.cmd_qsize()
        or kernel.exec_engine.evt_qsize()
    )


async def drain(kernel: NautilusKernel) -> None:
    """Return once the node processed everything handed to it so far. An enqueued message becomes visible to
    ``qsize()`` only one loop iteration later (the engines enqueue through ``call_soon_threadsafe``): the queues
    must be seen empty twice in a row."""
    idle = 0
    while idle < 2:
        await asyncio.sleep(0)
        idle = 0 if node_queues_busy(kernel) else idle + 1


class FeedLockstep:
    """Between the data clients and the data engine of a paper node on a live feed (see the module docstring)."""

    def __init__(self, kernel: NautilusKernel) -> None:
        self._kernel = kernel
        self._engine_process = kernel.data_engine.process
        self._waiting: asyncio.Queue[Any] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        kernel.msgbus.deregister(DATA_ENDPOINT, self._engine_process)
        kernel.msgbus.register(DATA_ENDPOINT, self._take)

    def _take(self, data: Any) -> None:
        # On the event loop's thread (the data clients' callbacks), as the engine's own process must be.
        if not isinstance(data, MARKET_DATA):  # instruments (loaded before the trader starts), statuses: at once
            self._engine_process(data)
            return
        self._waiting.put_nowait(data)
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._hand_over(), name="feed-lockstep")

    async def _hand_over(self) -> None:
        while True:
            data = await self._waiting.get()
            self._engine_process(data)
            await drain(self._kernel)

    async def stop(self) -> None:
        """The data clients go straight to the engine again; what waits here is dropped (the node is stopping)."""
        with contextlib.suppress(Exception):  # already restored, or the bus disposed
            self._kernel.msgbus.deregister(DATA_ENDPOINT, self._take)
            self._kernel.msgbus.register(DATA_ENDPOINT, self._engine_process)
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
