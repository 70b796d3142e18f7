"""Fills survive a database outage of any length, and restarts in the middle of one, with no replay.

The story of issue 12: PostgreSQL goes away for longer than every timeout the runtime has
(connect and command timeouts, the writer's retry maximum, the fence's lease, the server's TCP
timeout for a silent client) while the venue keeps filling the strategy's resting orders. A live
venue reports each fill once: the stand-in venue here (tests/support/venue_standin.py) never
reports a fill again, not even to a restarted runtime, and keeps a journal of every fill it
reported, which the ledger is compared with at the end: every fill once, none lost, none twice,
none the venue did not make.

Real ``livestrat runtime`` processes and a real PostgreSQL server; the outage is a proxy that
resets every connection and refuses new ones (tests/support/tcp_proxy.py), which is what a
stopped server looks like to its clients.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from livestrat.api.contract import ExitCode
from strategy_runtime.ledger import FENCE_LEASE_SECONDS, spool_directory
from strategy_runtime.ledger.base import RETRY_MAX_SECONDS
from strategy_runtime.ledger.postgres import COMMAND_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS, FENCE_TCP_SETTINGS
from strategy_runtime.ledger.spool import read_spool
from tests.support.catalogs import falling, write_price_path
from tests.support.processes import wait_stopped
from tests.support.runtime_process import RuntimeProcess
from tests.support.scripted import scripted_strategy
from tests.support.tcp_proxy import CuttableProxy
from tests.support.venue_standin import VenueJournal, start_live_runtime

pytestmark = pytest.mark.slow

NAME = "outage"
KEY = f"desk/{NAME}"
SPEED = 120  # a one-minute bar every 0.5 s
# Resting buy limits 0.03 % apart under a price that falls 0.01 % a bar: one fills every third bar.
LADDER = [
    {"bar": 1, "do": "limit", "side": "BUY", "quantity": "0.001", "offset": -0.0003 * k, "tag": "ladder"}
    for k in range(1, 91)
]
# An outage longer than every timeout the runtime has, the server's for a silent client included.
OUTAGE_SECONDS = (
    max(
        CONNECT_TIMEOUT_SECONDS,
        COMMAND_TIMEOUT_SECONDS,
        RETRY_MAX_SECONDS,
        FENCE_LEASE_SECONDS,
        int(FENCE_TCP_SETTINGS["tcp_user_timeout"]) / 1000,
    )
    + 2
)


def ladder_strategy(directory: Path) -> dict:
    return scripted_strategy(str(directory / "events.jsonl"), steps=LADDER)


def venue_fills(journal: Path) -> list[str]:
    return VenueJournal.read(journal)[1]


async def ledger_trade_ids(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["trade_id"] for r in await conn.fetch("SELECT trade_id FROM fills WHERE strategy_key = $1", KEY)]
    finally:
        await conn.close()


def compare(venue: list[str], ledger: list[str], upto: int | None = None) -> tuple[int, int, int]:
    """(lost, duplicated, made up): the venue's fills (its first ``upto``) not in the ledger, ledger rows
    stored twice, rows the venue never made (the venue's journal read after the ledger: it holds more)."""
    expected = venue[:upto] if upto is not None else venue
    return len(set(expected) - set(ledger)), len(ledger) - len(set(ledger)), len(set(ledger) - set(venue))


async def compared(dsn: str, journal: Path, upto: int) -> tuple[int, int, int]:
    ledger = await ledger_trade_ids(dsn)
    return compare(venue_fills(journal), ledger, upto)


async def an_outage(proxy: CuttableProxy, runtime: RuntimeProcess, journal: Path) -> dict:
    """Take the database away for ``OUTAGE_SECONDS`` while the venue fills at least five orders; what the
    runtime said about itself at the end of it (its /state, and /readyz under ``readyz``)."""
    filled_before = len(venue_fills(journal))
    await proxy.cut()
    cut_at = time.monotonic()
    while time.monotonic() - cut_at < OUTAGE_SECONDS or len(venue_fills(journal)) < filled_before + 5:
        assert runtime.process.poll() is None, f"the runtime exited during the outage:\n{runtime.output()[-4000:]}"
        await asyncio.sleep(0.5)
    state = await runtime.state()
    state["readyz"] = await runtime.get("/readyz")
    return state


async def kill_9_with_every_fill_durable(runtime: RuntimeProcess, journal: Path, spool: Path, dsn_seen: list[str]):
    """``kill -9`` at a moment when every fill the venue reported is durable (in the ledger or the spool).

    A fill is durable a few milliseconds after the venue reports it (the spool's sync); a kill inside
    that window loses it on the pod (only the venue has it then: docs/ledger.md). The runtime is
    frozen to look, and killed only when nothing is inside the window.
    """
    for _ in range(100):
        runtime.process.send_signal(signal.SIGSTOP)
        wait_stopped(runtime.process.pid)
        durable = {f.trade_id for f in read_spool(spool).fills} | set(dsn_seen)
        if set(venue_fills(journal)) <= durable:
            runtime.process.send_signal(signal.SIGKILL)
            runtime.process.wait(timeout=10)
            return
        runtime.process.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.1)
    raise AssertionError("the runtime never had every fill durable at once")


async def test_every_fill_reaches_the_ledger_once_after_outages_longer_than_every_timeout_and_a_kill_9_in_one(
    tmp_path, pg_database
):
    catalog = write_price_path(tmp_path / "catalog", falling(3_000, step=0.0001))
    pod = tmp_path / "pod"  # one pod: the same state directory (and spool) across its restarts
    journal = tmp_path / "venue.jsonl"
    proxy = CuttableProxy.to(pg_database)
    await proxy.start()
    dsn = proxy.dsn_through(pg_database)
    first = start_live_runtime(
        pod, catalog, ladder_strategy(pod), dsn=dsn, name=NAME, speed=SPEED, tag="first", journal=journal
    )
    second: RuntimeProcess | None = None
    try:
        await first.wait_ready()
        await first.wait_until(lambda s: s["trading"]["fills"] >= 3, what="the first fills committed")

        # 1. The database is away longer than every timeout: orders wait (the fence cannot be confirmed),
        # fills keep coming and are kept on disk, and the runtime is not ready; then it comes back.
        during = await an_outage(proxy, first, journal)
        filled_in_outage = len(venue_fills(journal))
        await proxy.restore()
        resumed = await first.wait_until(
            lambda s: s["ledger"]["fenceHeld"] and s["ledger"]["ordersHeld"] is None and s["ledger"]["pending"] == 0,
            timeout=60,
            what="trading resumed with every fill committed",
        )
        ready_again = await first.get("/readyz")
        lost_1, duplicated_1, made_up_1 = await compared(pg_database, journal, filled_in_outage)

        # 2. Away again, and the pod's process is killed in the middle of it (kill -9: no halt, nothing
        # flushed); the database comes back, and the pod starts again on its volume.
        await an_outage(proxy, first, journal)
        await kill_9_with_every_fill_durable(
            first, journal, spool_directory(pod / "state", KEY), await ledger_trade_ids(pg_database)
        )
        killed_after = len(venue_fills(journal))
        await proxy.restore()
        second = start_live_runtime(
            pod, catalog, ladder_strategy(pod), dsn=dsn, name=NAME, speed=SPEED, tag="second", journal=journal
        )
        await second.wait_ready()
        lost_2, duplicated_2, made_up_2 = await compared(pg_database, journal, killed_after)
        await second.wait_until(lambda s: s["trading"]["fills"] >= killed_after + 2, what="the restarted pod trading")
        second.signal()
        code, _ = await second.wait_exit(30)
    finally:
        first.kill()
        if second is not None:
            second.kill()
        await proxy.stop()

    venue, ledger = venue_fills(journal), await ledger_trade_ids(pg_database)
    lost, duplicated, made_up = compare(venue, ledger)
    print(
        f"outage 1 ({OUTAGE_SECONDS:g}s): {filled_in_outage} fills at the venue by its end, {lost_1} lost, "
        f"{duplicated_1} duplicated, {made_up_1} made up; outage 2 with kill -9: {killed_after} fills at the venue "
        f"by the kill, {lost_2} lost, {duplicated_2} duplicated, {made_up_2} made up after the restart; in all "
        f"{len(venue)} fills at the venue, {len(ledger)} in the ledger: {lost} lost, {duplicated} duplicated, "
        f"{made_up} made up"
    )
    assert "fence" in during["ledger"]["ordersHeld"], during["ledger"]
    assert during["ledger"]["spooled"] > 0 and during["ledger"]["notDurable"] == 0, during["ledger"]
    assert during["readyz"][0] == 503 and "orders are held" in during["readyz"][1]
    assert resumed["ledger"]["fenceUnconfirmed"] is None and ready_again[0] == 200
    assert (lost_1, duplicated_1, made_up_1) == (0, 0, 0)
    assert (lost_2, duplicated_2, made_up_2) == (0, 0, 0)
    assert (lost, duplicated, made_up) == (0, 0, 0)
    assert code == ExitCode.OK, second.output()[-4000:]
    assert "committed" in second.output() and "the spool" in second.output()  # drained at start


async def test_a_runtime_whose_fence_was_taken_during_an_outage_exits_4_and_its_spool_reaches_the_ledger_later(
    tmp_path, pg_database
):
    catalog = write_price_path(tmp_path / "catalog", falling(3_000, step=0.0001))
    proxy = CuttableProxy.to(pg_database)
    await proxy.start()
    cut_off_pod, replacement_pod = tmp_path / "cut-off", tmp_path / "replacement"

    def pod(directory: Path, dsn: str, tag: str) -> RuntimeProcess:
        strategy = ladder_strategy(directory)
        return start_live_runtime(directory, catalog, strategy, dsn=dsn, name=NAME, speed=SPEED, tag=tag)

    cut_off = pod(cut_off_pod, proxy.dsn_through(pg_database), "cut-off")
    replacement: RuntimeProcess | None = None
    restarted: RuntimeProcess | None = None
    try:
        await cut_off.wait_ready()
        await cut_off.wait_until(lambda s: s["trading"]["fills"] >= 3, what="the first fills committed")
        await proxy.cut()  # its sessions end: the fence's lock is free, and it cannot see who takes it
        await cut_off.wait_until(lambda s: s["ledger"]["fenceUnconfirmed"], what="the lease run out")

        replacement = pod(replacement_pod, pg_database, "replacement")  # another pod, straight to the database
        await replacement.wait_ready()
        await replacement.wait_until(lambda s: s["trading"]["fills"] >= 2, what="the replacement trading")
        ours = set(venue_fills(cut_off_pod / "venue.jsonl"))
        stored_at_takeover = ours & set(await ledger_trade_ids(pg_database))

        await proxy.restore()  # the database is back for the cut-off runtime: the fence is another's now
        code, _ = await cut_off.wait_exit(60)
        ours = set(venue_fills(cut_off_pod / "venue.jsonl"))
        written_after = (ours & set(await ledger_trade_ids(pg_database))) - stored_at_takeover
        spooled = {f.trade_id for f in read_spool(spool_directory(cut_off_pod / "state", KEY)).fills}

        replacement.signal()
        replacement_code, _ = await replacement.wait_exit(30)
        # the cut-off pod starts again on its volume, once the replacement has gone: its spool reaches the ledger
        restarted = pod(cut_off_pod, pg_database, "restarted")
        await restarted.wait_ready()
        restarted.signal()
        restarted_code, _ = await restarted.wait_exit(30)
    finally:
        for process in (cut_off, replacement, restarted):
            if process is not None:
                process.kill()
        await proxy.stop()

    venue = [*venue_fills(cut_off_pod / "venue.jsonl"), *venue_fills(replacement_pod / "venue.jsonl")]
    ledger = await ledger_trade_ids(pg_database)
    lost, duplicated, made_up = compare(venue, ledger)
    print(
        f"cut-off runtime: exit {code}, {len(written_after)} fill(s) written after the takeover, {len(spooled)} "
        f"kept in its spool ({len(ours - stored_at_takeover)} of its venue fills not in the ledger at the "
        f"takeover); after its restart: {len(venue)} fills at the venues, {len(ledger)} in the ledger, {lost} lost, "
        f"{duplicated} duplicated, {made_up} made up"
    )
    assert code == ExitCode.FENCE_LOST, cut_off.output()[-4000:]
    assert written_after == set()
    assert spooled == ours - stored_at_takeover and spooled
    assert (replacement_code, restarted_code) == (ExitCode.OK, ExitCode.OK)
    assert (lost, duplicated, made_up) == (0, 0, 0)
