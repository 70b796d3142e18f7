"""A runtime cut off from its ledger and frozen while a replacement takes over never trades again.

The story of issue 12: a live runtime is frozen (``SIGSTOP``: a long GC pause, a stopped
container, a VM paused by its host) while the network between it and PostgreSQL goes silent
(a partition: nothing is reset or closed, the runtime learns nothing from the network); the
database ends the runtime's sessions, and a replacement takes the strategy's fence and trades.
Then the stale runtime wakes up (``SIGCONT``). It must place no order and write no fill, and
exit with ``FENCE_LOST`` (4) without hanging.

Real ``livestrat runtime`` processes, a real PostgreSQL server behind a proxy that can go silent
(tests/support/tcp_proxy.py), and the stand-in venue (tests/support/venue_standin.py), whose own
journal counts the orders that reached it, and each process's trade ids carry a prefix of that
process, which tells whose fills the ledger holds.
"""

from __future__ import annotations

import signal
from pathlib import Path

import asyncpg
import pytest

from livestrat.api.contract import ExitCode
from tests.support.catalogs import flat, write_price_path
from tests.support.processes import wait_stopped
from tests.support.runtime_process import RuntimeProcess
from tests.support.scripted import scripted_strategy
from tests.support.tcp_proxy import CuttableProxy
from tests.support.venue_standin import VenueJournal, start_live_runtime

pytestmark = pytest.mark.slow

NAME = "partitioned"
SPEED = 300  # a one-minute bar every 0.2 s, and a market order on each


def runtime(tmp_path: Path, catalog: Path, who: str, dsn: str) -> RuntimeProcess:
    """A live runtime of the one strategy ``desk/partitioned``, in its own directory (its own pod)."""
    strategy = scripted_strategy(str(tmp_path / who / "events.jsonl"), keep_trying_from=1)
    return start_live_runtime(tmp_path / who, catalog, strategy, dsn=dsn, name=NAME, speed=SPEED, tag=who)


async def fills_with_prefix(conn: asyncpg.Connection, prefix: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM fills WHERE strategy_key = $1 AND trade_id LIKE $2", f"desk/{NAME}", f"{prefix}-%"
    )


async def test_a_frozen_runtime_cut_off_by_a_partition_never_trades_after_a_replacement_took_its_fence(
    tmp_path, pg_database
):
    catalog = write_price_path(tmp_path / "catalog", flat(5_000))
    proxy = CuttableProxy.to(pg_database)
    await proxy.start()
    admin = await asyncpg.connect(pg_database)
    stale = runtime(tmp_path, catalog, "stale", proxy.dsn_through(pg_database))
    replacement: RuntimeProcess | None = None
    try:
        await stale.wait_ready()
        await stale.wait_until(lambda s: s["trading"]["fills"] >= 5, what="the first runtime trading")

        # Frozen, and partitioned: the database's answers (and its closing of the sessions) never arrive.
        stale.signal(signal.SIGSTOP)
        wait_stopped(stale.process.pid)
        silenced = proxy.blackhole("to_client")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1::int[])", silenced
        )
        orders_frozen = len(VenueJournal.read(tmp_path / "stale" / "venue.jsonl")[0])
        prefix = (await admin.fetchval("SELECT min(trade_id) FROM fills")).split("-")[0]

        replacement = runtime(tmp_path, catalog, "replacement", pg_database)
        await replacement.wait_ready()
        await replacement.wait_until(lambda s: s["trading"]["fills"] >= 3, what="the replacement trading")
        fills_at_takeover = await fills_with_prefix(admin, prefix)

        stale.signal(signal.SIGCONT)
        code, _ = await stale.wait_exit(60)

        orders_after = len(VenueJournal.read(tmp_path / "stale" / "venue.jsonl")[0]) - orders_frozen
        fills_after = await fills_with_prefix(admin, prefix) - fills_at_takeover
        print(
            f"stale runtime after the takeover: {orders_after} order(s) at the venue, {fills_after} fill(s) "
            f"written to the ledger, exit code {code} ({orders_frozen} orders and {fills_at_takeover} fills before)"
        )
        await replacement.wait_until(lambda s: s["trading"]["fills"] >= 6, what="the replacement trading on")
        replacement.signal()
        replacement_code, _ = await replacement.wait_exit(30)
    finally:
        stale.process.send_signal(signal.SIGCONT)
        stale.kill()
        if replacement is not None:
            replacement.kill()
        await admin.close()
        await proxy.stop()

    assert orders_after == 0, stale.output()[-6000:]
    assert fills_after == 0, stale.output()[-6000:]
    assert code == ExitCode.FENCE_LOST, stale.output()[-6000:]
    assert "fence" in stale.output()
    assert replacement_code == ExitCode.OK, replacement.output()[-4000:]
