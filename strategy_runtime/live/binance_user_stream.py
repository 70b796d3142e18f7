"""The spot user-data subscription is not lost to a termination that arrives while a reconnect is being finished.

NautilusTrader 1.231's spot execution client (``BinanceUserDataWebSocketClient``) recovers a dropped
WebSocket API connection in one task, ``_reconnect_task``: ``session.logon``, ``userDataStream.subscribe``,
then a reconciliation with the venue over REST (``_reconcile_after_resubscribe``) while the stream's events
are held. An ``eventStreamTerminated`` read in that window ends the subscription the task has just made;
the client's answer, ``_resubscribe``, sees the task still running, takes it for a reconnect under way
("Skipping resubscribe, WS API client is reconnecting", at DEBUG) and returns. The task then ends believing
it is subscribed. From then on no order event reaches the node: orders are placed and cancelled at the
venue over REST, and the node never hears of it (every later order stays SUBMITTED, every cancel
PENDING_CANCEL), until the process restarts. The wider the window (a loaded machine, a slow venue answer to
the reconciliation's ``allOrders``), the likelier a drop followed by a termination lands in it.

``resubscribe_after_reconnect`` replaces the client's ``_resubscribe``: a termination read while the
reconnect task is still running on a connection that is up waits for that task to end, then asks the venue
which subscriptions the connection holds (``session.subscriptions``, web-socket-api.md) and subscribes
again when it holds none. A reconnect begun meanwhile is left to recover by itself, as the adapter does.
Spot only: USD-M's events come on a listen-key stream this race does not touch (its own gap is in
docs/runtime.md). Pinned by ``tests/runtime/test_binance_user_stream.py``, which also shows the adapter's
own client staying unsubscribed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("livestrat.venues")

RESUBSCRIBE_METHOD = "_resubscribe"  # NautilusTrader 1.231's private names, pinned by test_binance_user_stream
RECONNECT_TASK = "_reconnect_task"


def _socket_reconnecting(ws: Any) -> bool:
    client = ws._client
    return client is None or client.is_reconnecting() or client.is_disconnecting()


def resubscribe_after_reconnect(ws: Any) -> None:
    """Install the correction on ``ws``, a spot ``BinanceUserDataWebSocketClient`` (module docstring)."""
    resubscribe = getattr(ws, RESUBSCRIBE_METHOD)

    async def resubscribe_once_the_reconnect_is_over() -> None:
        task = getattr(ws, RECONNECT_TASK)
        if task is None or task.done() or _socket_reconnecting(ws):
            await resubscribe()  # the adapter's own answer: subscribe again, or leave it to the reconnect
            return
        logger.warning(
            "venue: the user data subscription ended while the client was finishing a reconnect; subscribing "
            "again once it is over"
        )
        await asyncio.wait({task})
        if _socket_reconnecting(ws) or ws._is_recovery_failed:
            return  # another drop meanwhile: that reconnect logs on and subscribes afresh
        try:
            response = await ws._send_request("session.subscriptions")
            active = response.get("result") or []
        except Exception as exc:
            logger.warning("venue: could not ask the venue for this connection's subscriptions (%s)", exc)
            return
        if active:
            return  # the venue holds a subscription on this connection: nothing was lost
        await resubscribe()

    setattr(ws, RESUBSCRIBE_METHOD, resubscribe_once_the_reconnect_is_over)
