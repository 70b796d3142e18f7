"""Live vs paper twin on the desk: the figures each runtime reports, side by side, and what trading for real cost.

The comparison's own arithmetic is checked against the inputs' (the gap is live minus twin, the fill rate is
filled of submitted); a figure a runtime does not report is ``-``, never 0; and an object that merely holds the
twin's name is never taken for the twin.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from livestrat.api.contract import TWIN_OF_LABEL
from livestrat.desk import fleet
from livestrat.desk.twins import TwinComparison, find_twin
from tests.dashboard.fleet_bodies import strategy
from tests.support.desk import LIVESTRATEGIES
from tests.support.desk_plugin import kubectl_livestrat

LIVE_FIGURES = {
    "fills": 39,
    "total_pnl": "120.50 USDT",
    "realized_pnl": "100.00 USDT",
    "orders_submitted": 40,
    "orders_filled": 39,
    "slippage_bps": "3.25",
}
TWIN_FIGURES = {
    "fills": 41,
    "total_pnl": "150.00 USDT",
    "realized_pnl": "150.00 USDT",
    "orders_submitted": 41,
    "orders_filled": 41,
    "slippage_bps": "0.50",
}


def live_body(**trading) -> dict:
    body = strategy("ema", trading=trading)
    body["spec"]["mode"] = "live"
    body["spec"]["twin"] = {"startingBalances": ["10000 USDT"]}
    return body


def twin_body(of: str | None = "ema", **trading) -> dict:
    body = strategy("ema-twin", trading=trading)
    if of is not None:
        body["metadata"]["labels"] = {TWIN_OF_LABEL: of}
    return body


def test_the_comparison_is_live_minus_twin_from_what_each_runtime_reports():
    live, twin = fleet.row(live_body(**LIVE_FIGURES)), fleet.row(twin_body(**TWIN_FIGURES))
    compared = TwinComparison.of(live, twin)
    gap = Decimal(LIVE_FIGURES["total_pnl"].split()[0]) - Decimal(TWIN_FIGURES["total_pnl"].split()[0])
    assert compared.pnl_gap == {"USDT": gap}
    assert compared.slippage_gap == Decimal(LIVE_FIGURES["slippage_bps"]) - Decimal(TWIN_FIGURES["slippage_bps"])
    assert compared.live.fill_rate == Decimal(39) / Decimal(40) and compared.twin.fill_rate == 1
    lines = {figure: (a, b, c) for figure, a, b, c in compared.lines()}
    assert lines["total PnL"] == ("120.50 USDT", "150.00 USDT", f"{gap:f} USDT")
    assert lines["fill rate"] == ("97.5% (39/40)", "100.0% (41/41)", "-2.5 pp")
    assert lines["slippage"] == ("3.25 bps", "0.50 bps", "2.75 bps")
    assert lines["fills"] == ("39", "41", "-2")
    document = compared.document()
    assert document["live"]["fillRate"] == "0.9750" and document["slippageGapBps"] == "2.75"


def test_a_figure_a_runtime_does_not_report_is_shown_as_unknown_not_zero():
    live = fleet.row(live_body(fills=0, total_pnl="0.00 USDT"))  # an older runtime: no orders, no slippage
    twin = fleet.row(twin_body(**TWIN_FIGURES))
    lines = {figure: (a, b, c) for figure, a, b, c in TwinComparison.of(live, twin).lines()}
    assert lines["fill rate"] == ("-", "100.0% (41/41)", "-")
    assert lines["slippage"] == ("-", "0.50 bps", "-")
    no_orders = fleet.row(live_body(orders_submitted=0, orders_filled=0))
    assert TwinComparison.of(no_orders, twin).live.fill_rate is None


def test_only_the_object_labelled_as_its_twin_is_the_twin():
    live = fleet.row(live_body())
    namesake = fleet.row(twin_body(of=None))  # someone's paper strategy called ema-twin
    other = fleet.row(twin_body(of="another"))
    assert find_twin(live, [live, namesake, other]) is None
    twin = fleet.row(twin_body())
    assert find_twin(live, [live, namesake, twin]) is twin
    elsewhere = twin_body()
    elsewhere["metadata"]["namespace"] = "desk-b"
    assert find_twin(live, [fleet.row(elsewhere)]) is None


@pytest.mark.slow  # runs kubectl and the plugin
async def test_kubectl_livestrat_status_puts_live_and_twin_side_by_side(emulator, kubeconfig_path):
    for body in (live_body(**LIVE_FIGURES), twin_body(**TWIN_FIGURES)):
        status = body.pop("status")
        for key in ("uid",):
            body["metadata"].pop(key)
        emulator.create_object(LIVESTRATEGIES, body, namespace="default")
        emulator.patch_object(
            LIVESTRATEGIES, body["metadata"]["name"], {"status": status}, namespace="default", subresource="status"
        )
    shown = await kubectl_livestrat("status", "ema", kubeconfig=kubeconfig_path)
    assert shown.returncode == 0, shown.output
    assert "Live vs paper twin" in shown.stdout
    line = next(line for line in shown.stdout.splitlines() if line.strip().startswith("fill rate"))
    assert "97.5% (39/40)" in line and "100.0% (41/41)" in line and "-2.5 pp" in line
    document = yaml.safe_load(
        (await kubectl_livestrat("status", "ema", "-o", "yaml", kubeconfig=kubeconfig_path)).stdout
    )
    assert document["twin"]["twin"]["name"] == "ema-twin" and document["twin"]["slippageGapBps"] == "2.75"
    assert document["twin"]["totalPnlGap"] == {"USDT": "-29.50"}

    # the twin's label removed: an object of that name is not taken for the twin
    emulator.patch_object(LIVESTRATEGIES, "ema-twin", {"metadata": {"labels": None}}, namespace="default")
    document = yaml.safe_load(
        (await kubectl_livestrat("status", "ema", "-o", "yaml", kubeconfig=kubeconfig_path)).stdout
    )
    assert document["twin"] is None


async def test_the_dashboard_detail_of_a_live_strategy_shows_its_twin_beside_it():
    from livestrat.desk.dashboard import Dashboard, MemorySource
    from tests.dashboard.fleet_bodies import plain
    from tests.dashboard.test_dashboard import SIZE, RecordingControls, detail_text, drawn

    app = Dashboard(MemorySource("fleet", [live_body(**LIVE_FIGURES), twin_body(**TWIN_FIGURES)]), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 2)
        text = detail_text(app)
        assert "default/ema " in text and "Live vs paper twin" in text  # the first row, the live one, is selected
        line = next(line for line in text.splitlines() if line.strip().startswith("slippage"))
        assert line.split() == ["slippage", "3.25", "bps", "0.50", "bps", "2.75", "bps"]
        await pilot.press("down")  # the twin itself: a paper strategy, no comparison of its own
        await pilot.pause()
        assert "default/ema-twin" in detail_text(app) and "Live vs paper twin" not in detail_text(app)
        del plain
