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

A second window: a drop that lands while ``_reconnect_task`` waits for the answer to its ``session.logon`` or
``userDataStream.subscribe``. The answer is lost with the connection; the socket reconnects and starts a newer
task, which waits on the recovery lock the first one holds. The first times out (10 s), marks the recovery
failed (``_is_recovery_failed``) and disconnects the client; the newer one then refuses to send anything. The
stream is given up for good, with the same blindness, after nothing worse than two drops close together.
``resubscribe_after_reconnect`` also replaces ``_reauth_and_resubscribe`` with the same steps, except that a
failure of a task a newer reconnect has superseded (or while the socket is reconnecting again) is left to that
newer reconnect, which logs on and subscribes on the connection that is up. Only a failure on the connection
that is current gives the stream up, as the adapter does.

Spot only: USD-M's events come on a listen-key stream these races do not touch (its own gap is in
docs/runtime.md). Pinned by ``tests/runtime/test_binance_user_stream.py``, which also shows the adapter's
own client staying unsubscribed (or giving the stream up).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("livestrat.venues")

RESUBSCRIBE_METHOD = "_resubscribe"  # NautilusTrader 1.231's private names, pinned by test_binance_user_stream
RECONNECT_TASK = "_reconnect_task"
REAUTH_METHOD = "_reauth_and_resubscribe"


def _socket_reconnecting(ws: Any) -> bool:
    client = ws._client
    return client is None or client.is_reconnecting() or client.is_disconnecting()


def resubscribe_after_reconnect(ws: Any) -> None:
    """Install the corrections on ``ws``, a spot ``BinanceUserDataWebSocketClient`` (module docstring)."""
    resubscribe = getattr(ws, RESUBSCRIBE_METHOD)
    getattr(ws, REAUTH_METHOD)  # fails at startup, not at the first reconnect, if the adapter renamed it

    async def reauth_and_resubscribe_unless_superseded() -> None:
        this = asyncio.current_task()
        async with ws._recovery_lock:
            try:
                ws._log.warning("Reconnected, re-authenticating...")
                await ws._disconnect_stream()
                await ws.session_logon()
                await ws.subscribe_user_data_stream(pre_dispatch_hook=ws._on_resubscribe)
                ws._log.warning("Re-authenticated and resubscribed after reconnect")
            except Exception as exc:
                if getattr(ws, RECONNECT_TASK) is not this or _socket_reconnecting(ws):
                    logger.warning(
                        "venue: the connection dropped again while the client was logging on after a reconnect "
                        "(%s); the newer reconnect logs on and subscribes",
                        exc,
                    )
                    return
                ws._is_recovery_failed = True
                ws._log.error(
                    f"Failed to re-authenticate after reconnect: {exc}, user data stream is NOT active, disconnecting"
                )
                await ws.disconnect()

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
    setattr(ws, REAUTH_METHOD, reauth_and_resubscribe_unless_superseded)
