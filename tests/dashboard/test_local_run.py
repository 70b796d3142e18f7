"""``livestrat run --desk``: the example run locally by the real runtime, its dashboard driven by Textual's pilot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable

from livestrat.cli import build_parser
from livestrat.desk.dashboard import ConfirmAction
from strategy_runtime.local.desk import LocalDashboard, run_with_desk
from strategy_runtime.local.run import local_config
from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.runtime import RuntimeOptions, StrategyRuntime
from tests.support.desk import EXAMPLES
from tests.support.kube import wait_for

pytestmark = pytest.mark.slow  # a NautilusTrader node replays the example's sample

SIZE = (200, 50)


def shown(app: LocalDashboard, column: str) -> str:
    table = app.query_one("#fleet", DataTable)
    if table.row_count != 1:
        return ""
    value = table.get_cell_at((0, table.get_column_index(column)))
    return value.plain if isinstance(value, Text) else str(value)


async def test_the_local_run_trades_in_the_dashboard_and_ctrl_c_there_halts_it_with_its_halt_policy(tmp_path: Path):
    # What `livestrat run --desk --speed 600 examples/paper-ema-cross.yaml` does (ten one-minute bars a second).
    args = build_parser().parse_args(
        ["run", str(EXAMPLES / "paper-ema-cross.yaml"), "--workdir", str(tmp_path), "--speed", "600", "--desk"]
    )
    environ: dict[str, str] = {}
    config = local_config(args, environ, None)
    catalog = prepare_catalog(config)
    options = RuntimeOptions(
        serve_http=False,
        push_status=False,
        stop_when_replay_finishes=True,
        fence_wait_seconds=0.0,
        environ=environ,
        catalog=catalog,
        keep_fills=True,
        signals_halt=True,
    )
    runtime = StrategyRuntime(config, options)
    seen: dict[str, str] = {}

    async def person(app: LocalDashboard) -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: shown(app, "phase") == "Running", timeout=60)
            assert shown(app, "strategy") == config.strategy.key and shown(app, "mode") == "paper"
            await wait_for(lambda: shown(app, "fill") != "-", timeout=60)  # the first fill
            seen["fill"] = shown(app, "fill")
            assert shown(app, "pnl") != "-" and shown(app, "risk") == "Active"

            # h asks first; n leaves the run going.
            await pilot.press("h")
            await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
            assert "as Ctrl-C does" in app.screen.plan.will and "haltPolicy flatten" in app.screen.plan.will
            await pilot.press("n")
            await wait_for(lambda: not isinstance(app.screen, ConfirmAction), timeout=10)
            assert not runtime.stop_reason

            # Ctrl-C halts at once, as it does without the dashboard: orders cancelled, the position closed.
            await pilot.press("ctrl+c")
            await wait_for(lambda: shown(app, "phase") == "Halted", timeout=60)
            assert shown(app, "position") == "flat"
            await pilot.press("q")

    outcome = await asyncio.wait_for(run_with_desk(runtime, config, show=person), timeout=180)
    runtime.disarm_watchdog()
    assert outcome.reason == "received Ctrl-C from the person running it"
    assert outcome.snapshot is not None and outcome.snapshot.trading.fills >= 1
    assert outcome.snapshot.trading.positions == [] and outcome.snapshot.trading.open_orders == 0
    assert seen["fill"].split()[0] in ("BUY", "SELL")
