"""Binance spot charges a buy's commission in the base asset: what that does to a live strategy's halt.

A buy of 0.001 BTC at a 0.1 % fee leaves the account 0.000999 BTC, and NautilusTrader's position (its
size precision is the symbol's step, 0.00001) still says 0.001: a close of the position's quantity is
more than the account holds, and the venue refuses it (-2010 "Account has insufficient balance for
requested action."). A real ``livestrat runtime`` (NautilusTrader's Binance adapter) against the venue
emulator, which charges commissions as Binance does.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from livestrat.api.contract import ExitCode
from strategy_runtime.halt import CLOSE_REFUSALS_TOLERATED
from tests.support.live_runtime import SPOT, LiveStory, Reckoning, live_catalog, story_spec
from tests.support.scripted import read_events, scripted_strategy
from tests.support.venue_emulator_process import scenario, venue_emulator

pytestmark = pytest.mark.slow

SPEED = 120
BALANCES = {"USDT": "100000"}
HALT_RECORD = {"reason": "ScaledToZero", "message": "spec.replicas is 0", "since": "2026-12-06T07:00:00Z"}


ETH = "ETHUSDT.BINANCE"  # the sample's ETHUSDT steps 0.00001, as Binance's BTCUSDT does


@dataclass
class Halted:
    """What a flatten halt left: the venue's word and the runtime's."""

    code: int
    output: str
    bought: dict[str, Any]  # the venue's balances after the entry filled
    balances: dict[str, Any]  # after the halt
    open_orders: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    final: dict[str, Any]  # the last status the runtime pushed: status.trading
    refused: list[dict[str, Any]]  # the strategy's orders the venue refused
    reckoning: Reckoning


async def flatten_halt_after_a_buy(
    tmp_path,
    pg_database,
    emulator,
    kubeconfig_path,
    instrument,
    quantity,
    *,
    refusals: int = 0,
    then: list[dict[str, Any]] = (),  # type: ignore[assignment]
    balances: dict[str, str] = BALANCES,
) -> Halted:
    """A live spot strategy buys ``quantity`` at market, then halts under ``haltPolicy: flatten``; the venue
    refuses the next ``refusals`` orders (the halt's closes)."""
    from tests.support.kube import LIVESTRATEGIES

    catalog = live_catalog(tmp_path / "catalog", instrument)
    events = tmp_path / "events.jsonl"
    steps = [{"bar": 2, "do": "market", "side": "BUY", "quantity": quantity, "tag": "entry"}, *then]
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[instrument], scenario=scenario(balances), speed=SPEED
    ) as venue:
        strategy = scripted_strategy(str(events), instrument, steps=steps)
        spec = story_spec(strategy, instrument, haltPolicy="flatten")
        story = LiveStory.of(tmp_path, venue, pg_database, spec, name="dusty", report_status=True)
        story.publish(emulator, spec)
        namespace = story.config.strategy.namespace
        try:
            runtime = story.start(env={"KUBECONFIG": str(kubeconfig_path)})
            await runtime.wait_ready(timeout=90)
            await runtime.wait_until(lambda s: s["trading"]["fills"] == 1 + len(then), what="the entry filled")
            bought = await venue.admin.balances()
            for _ in range(refusals):
                await venue.admin.fault(
                    "reject_next_order", msg="Account has insufficient balance for requested action."
                )
            emulator.patch_object(
                LIVESTRATEGIES, "dusty", {"status": {"halt": HALT_RECORD}}, namespace=namespace, subresource="status"
            )
            runtime.signal(signal.SIGTERM)
            code, _ = await runtime.wait_exit(timeout=story.config.halt_budget_seconds + 10)
            halted = Halted(
                code=code,
                output=runtime.output(),
                bought=bought,
                balances=await venue.admin.balances(),
                open_orders=await venue.admin.open_orders(),
                trades=await venue.admin.trades(),
                final=emulator.read_object(LIVESTRATEGIES, "dusty", namespace=namespace)["status"]["trading"],
                refused=[e for e in read_events(str(events)) if e.get("event") == "OrderRejected"],
                reckoning=await story.reckoning(),
            )
        finally:
            story.kill_all()
    base = instrument.split("USDT")[0]
    print(
        f"flatten on spot {instrument}: {base} after the buy {bought[base]['free']}, after the halt "
        f"{halted.balances[base]['free']}; USDT after {halted.balances['USDT']['free']}; venue trades "
        f"{[(t['isBuyer'], t['qty'], t['price'], t['commission'], t['commissionAsset']) for t in halted.trades]}; "
        f"closes refused {len(halted.refused)}; exit {code}; final status {halted.final.get('nodeState')} "
        f"positions {halted.final.get('positions')} realized {halted.final.get('realizedPnl')}"
    )
    return halted


async def test_the_book_takes_a_buys_btc_commission_off_the_position_and_prices_it_in_the_pnl(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    # The sample's BTCUSDT steps 0.000001: NautilusTrader's position takes the 0.000001 BTC commission
    # off (0.000999), the halt sells exactly what the account holds.
    halted = await flatten_halt_after_a_buy(tmp_path, pg_database, emulator, kubeconfig_path, SPOT, "0.001")
    assert halted.bought["BTC"]["free"] == "0.00099900", "the buy's commission is paid in BTC"
    assert halted.code == 0, halted.output[-4000:]
    assert halted.balances["BTC"]["free"] == "0.00000000" and halted.open_orders == []
    assert halted.final["positions"] == [], "the book is flat when the venue is"
    usdt_pnl = Decimal(halted.balances["USDT"]["free"]) - Decimal(BALANCES["USDT"])
    assert halted.final["realizedPnl"] == f"{usdt_pnl.quantize(Decimal('0.01'))} USDT", (
        "realized PnL in USDT is what the account gained in USDT: the BTC commission priced at its fill"
    )
    assert (halted.reckoning.lost, halted.reckoning.unknown, halted.reckoning.duplicated) == ((), (), 0)


async def test_a_flatten_halt_on_spot_sells_what_the_account_holds_and_reports_the_dust(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    # 0.01007 ETH at 0.1 %: 0.00001007 ETH of commission, the account holds 0.01005993; NautilusTrader
    # rounds its position to the step, 0.01006, more than the account holds: Binance refuses that close.
    halted = await flatten_halt_after_a_buy(tmp_path, pg_database, emulator, kubeconfig_path, ETH, "0.01007")
    assert halted.bought["ETH"]["free"] == "0.01005993", "the buy's commission is paid in ETH"
    assert halted.code == 0, halted.output[-4000:]
    assert halted.open_orders == []
    assert [(t["isBuyer"], t["qty"]) for t in halted.trades] == [(True, "0.01007000"), (False, "0.01005000")], (
        "the halt sells what the account holds, rounded down to the step"
    )
    assert halted.balances["ETH"]["free"] == "0.00000993"
    assert len(halted.refused) <= 1, "a refused close is not sent again and again"
    assert "dust" in halted.output and "0.00000993" in halted.output, halted.output[-4000:]
    assert halted.final["nodeState"] == "Stopped"
    assert [(p["side"], p["quantity"]) for p in halted.final["positions"]] == [("LONG", "0.00000993")], (
        "the book holds what the account holds: the dust"
    )
    assert halted.final.get("haltDust") and "0.00000993 ETH" in halted.final["haltDust"], halted.final
    assert (halted.reckoning.lost, halted.reckoning.unknown, halted.reckoning.duplicated) == ((), (), 0)


async def test_a_close_the_venue_keeps_refusing_is_not_sent_again_and_again(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    halted = await flatten_halt_after_a_buy(
        tmp_path, pg_database, emulator, kubeconfig_path, SPOT, "0.001", refusals=CLOSE_REFUSALS_TOLERATED + 1
    )
    assert len(halted.refused) == CLOSE_REFUSALS_TOLERATED, halted.refused
    assert halted.code == ExitCode.HALT_INCOMPLETE, halted.output[-4000:]
    assert halted.final["nodeState"] == "HaltIncomplete"
    assert halted.balances["BTC"]["free"] == "0.00099900", "the position stays at the venue"
    assert "not sending it again" in halted.output


async def test_a_short_left_by_a_buys_commission_is_dust_the_halt_does_not_try_to_buy_back(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    # Buy 0.001 BTC, sell 0.002, buy 0.001 back: each buy pays 0.000001 BTC, the position is short 0.000002,
    # worth 0.08 USDT: a buy of it is refused -1013 NOTIONAL, again and again.
    halted = await flatten_halt_after_a_buy(
        tmp_path,
        pg_database,
        emulator,
        kubeconfig_path,
        SPOT,
        "0.001",
        then=[{"bar": 3, "do": "market", "side": "SELL", "quantity": "0.002", "tag": "flip"},
              {"bar": 4, "do": "market", "side": "BUY", "quantity": "0.001", "tag": "back"}],
        balances={"USDT": "100000", "BTC": "0.01"},
    )  # fmt: skip
    assert halted.code == 0, halted.output[-4000:]
    assert halted.refused == [] and halted.open_orders == []
    assert len(halted.trades) == 3, "no close is sent"
    assert [(p["side"], p["quantity"]) for p in halted.final["positions"]] == [("SHORT", "0.00000200")]
    assert "SHORT 0.000002 BTC" in halted.final["haltDust"] and "minimum notional" in halted.final["haltDust"]
