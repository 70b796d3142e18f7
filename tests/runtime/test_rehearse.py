"""``livestrat rehearse``: a live manifest, unchanged, through the real Binance adapter against the venue emulator.

The slow test runs the command as a user does, on the live example, and checks the summary
against what the venue said: the same trades at the venue and in the ledger, no order left open,
and the key pair the rehearsal generated nowhere in what it printed. The others check what it
refuses, before any process starts.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from livestrat.cli import build_parser
from strategy_runtime.ledger import FillRecord
from strategy_runtime.local.rehearse import VenueComparison, rehearse_command, starting_balances
from strategy_runtime.local.run import _node_disagrees
from strategy_runtime.portfolio_view import PnlView
from strategy_runtime.runtime import RunOutcome
from tests.support.runtime_process import LIVESTRAT, ROOT

LIVE_EXAMPLE = ROOT / "examples" / "live-binance-testnet.yaml"


def args_for(file: Path | str, tmp_path: Path, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["rehearse", str(file), "--workdir", str(tmp_path), *extra])


def manifest_with(tmp_path: Path, **venue: object) -> Path:
    document = yaml.safe_load(LIVE_EXAMPLE.read_text())
    document["spec"]["venue"].update(venue)
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_paper_manifest_is_sent_to_livestrat_run(tmp_path, capsys):
    assert rehearse_command(args_for(ROOT / "examples" / "paper-ema-cross.yaml", tmp_path)) == 2
    assert "livestrat rehearse takes only spec.mode: live" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("venue", "expected"),
    [
        (
            {"adapter": "okx", "accountType": "swap"},
            "spec.venue.adapter is okx: the venue emulator speaks Binance's protocol only",
        ),
        ({"accountType": "margin"}, "spec.venue.accountType is margin: the venue emulator offers spot and usdtFutures"),
    ],
)
def test_a_venue_the_emulator_does_not_speak_is_refused_naming_the_field(tmp_path, capsys, venue, expected):
    assert rehearse_command(args_for(manifest_with(tmp_path, **venue), tmp_path)) == 2
    assert expected in capsys.readouterr().err


def test_a_dsn_on_the_command_line_is_refused(tmp_path, capsys):
    assert rehearse_command(args_for(LIVE_EXAMPLE, tmp_path, "--ledger", "postgresql://u:pw@h/db")) == 2
    err = capsys.readouterr().err
    assert "--ledger is not taken" in err and "pw@" not in err


def test_starting_balances_default_to_the_quote_assets_and_say_how_to_write_one():
    assert starting_balances([], ["USDT", "USDT"]) == {"USDT": Decimal(100_000)}
    assert starting_balances(["2.5 btc", "1000 USDT"], ["USDT"]) == {"BTC": Decimal("2.5"), "USDT": Decimal(1000)}
    with pytest.raises(ValueError, match="--balance '100000 USDT'"):
        starting_balances(["USDT"], [])


def fill(trade_id: str, instrument: str = "BTCUSDT.BINANCE") -> FillRecord:
    return FillRecord(
        strategy_key="k",
        trade_id=trade_id,
        client_order_id="O-1",
        venue_order_id="1",
        instrument_id=instrument,
        side="BUY",
        quantity=Decimal("0.001"),
        price=Decimal(40_000),
        commission=Decimal(0),
        commission_currency="USDT",
        ts_event=1,
        ts_init=1,
    )


def test_the_venue_s_trades_and_the_ledger_s_fills_are_matched_by_symbol_and_trade_id():
    trades = [{"symbol": "BTCUSDT", "id": 1}, {"symbol": "BTCUSDT", "id": 2}]
    same = VenueComparison.of(trades, [fill("1"), fill("2", "BTCUSDT-PERP.BINANCE")], open_orders=0)
    assert same.agrees and (same.at_venue, same.in_ledger) == (2, 2)
    lost = VenueComparison.of(trades, [fill("1"), fill("3")], open_orders=1)
    assert not lost.agrees
    assert (lost.only_at_venue, lost.only_in_ledger) == (("BTCUSDT#2",), ("BTCUSDT#3",))


def summary_field(output: str, name: str) -> str:
    match = re.search(rf"^  {re.escape(name)}:\s+(.*)$", output, re.MULTILINE)
    assert match, f"no {name!r} in the summary:\n{output}"
    return match.group(1)


def usdm_manifest(tmp_path: Path) -> Path:
    """The live example on a USD-M perpetual: the same strategy, another account type and instrument."""
    document = yaml.safe_load(LIVE_EXAMPLE.read_text())
    spec = document["spec"]
    spec["venue"]["accountType"] = "usdtFutures"
    spec["instruments"] = ["BTCUSDT-PERP.BINANCE"]
    spec["strategy"]["config"] |= {
        "instrument_id": "BTCUSDT-PERP.BINANCE",
        "bar_type": "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL",
    }
    path = tmp_path / "usdm.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.slow
def test_a_usd_m_spec_rehearses_with_an_hmac_key_and_ends_flat_at_the_venue(tmp_path):
    manifest = usdm_manifest(tmp_path)
    command = [LIVESTRAT, "rehearse", str(manifest), "--workdir", str(tmp_path), "--speed", "600", "--duration", "40"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    venue = summary_field(out, "venue fills")
    print(f"USD-M rehearsal: fills {summary_field(out, 'fills')}; {venue}; {summary_field(out, 'venue account')}")
    assert int(summary_field(out, "fills")) > 0 and "(the same trades)" in venue
    assert summary_field(out, "venue orders").startswith("0 open at the venue")
    assert summary_field(out, "positions") == "flat"  # USD-M honours reduce-only: the close cannot overshoot
    assert re.search(r"position BTCUSDT 0(\.0+)? @", summary_field(out, "venue account")), "flat at the venue"
    scenario = json.loads(next(tmp_path.glob("state/*/rehearsals/*/scenario.json")).read_text())
    assert scenario["keys"][0]["key_type"] == "hmac" and "usdm_wallet" in scenario


@pytest.mark.slow
def test_the_live_example_rehearses_unchanged_and_the_venue_agrees_with_the_ledger(tmp_path):
    result = subprocess.run(
        [
            LIVESTRAT,
            "rehearse",
            str(LIVE_EXAMPLE.relative_to(ROOT)),
            "--workdir",
            str(tmp_path),
            "--speed",
            "600",
            "--duration",
            "40",
            "--balance",
            "100000 USDT",
            "--balance",
            "1 BTC",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "wrote a synthetic sample catalog" in out
    assert "livestrat rehearse: ema-cross-binance-testnet stopped after" in out
    fills = int(summary_field(out, "fills"))
    venue = summary_field(out, "venue fills")
    at_venue, in_ledger = (int(n) for n in re.findall(r"(\d+) (?:at the venue|in the ledger)", venue))
    print(f"rehearsal: fills {fills}, at the venue {at_venue}, in the ledger {in_ledger}; {venue}")
    assert fills > 0 and at_venue == in_ledger == fills and "(the same trades)" in venue
    assert summary_field(out, "venue orders").startswith("0 open at the venue")
    # haltPolicy flatten: flat, unless the node missed a fill the venue made, which the summary then says. EMACross
    # closes (reduce-only) and re-enters in one go; Binance spot knows no reduce-only, and when the entry reaches the
    # venue first both sell: NautilusTrader refuses to apply the close, the ledger (and the book) have it.
    if "positions:      flat" not in out:
        assert "it did not apply every fill the venue executed" in summary_field(out, "the node"), out
    # The generated key pair: in the scenario file (owner-only), never in anything printed.
    scenarios = list(tmp_path.glob("state/*/rehearsals/*/scenario.json"))
    assert len(scenarios) == 1 and scenarios[0].stat().st_mode & 0o077 == 0
    keys = json.loads(scenarios[0].read_text())["keys"][0]
    assert keys["api_key"] not in out and keys["secret"] not in out
    logs = "".join(p.read_text(errors="replace") for p in scenarios[0].parent.glob("venue-emulator.*"))
    assert keys["secret"] not in logs


def test_a_live_account_s_zero_pnl_before_any_fill_is_not_the_node_disagreeing():
    # A live CASH account reports 0 USDT realized before its first fill, where the book of no fills has none.
    outcome = RunOutcome(0, "over", node_pnl=PnlView(realized={"USDT": Decimal(0)}), node_positions={})
    assert _node_disagrees(outcome, {}, []) is None
    outcome = RunOutcome(0, "over", node_pnl=PnlView(realized={"USDT": Decimal("1.5")}), node_positions={})
    assert _node_disagrees(outcome, {}, []) == "1.5 USDT realized, flat"


def test_by_default_a_rehearsal_lasts_as_long_as_the_catalog_s_market_at_its_speed(tmp_path):
    from livestrat.api.spec import SampleData
    from strategy_runtime.local.rehearse import FEED_END_MARGIN_SECONDS, market_seconds
    from strategy_runtime.paper.catalog import StrategyCatalog, open_catalog, write_sample_catalog

    write_sample_catalog(tmp_path, ["BTCUSDT.BINANCE"], SampleData(bars=120))
    catalog = StrategyCatalog(path=str(tmp_path), catalog=open_catalog(tmp_path), instruments=(), bar_types=())
    # 120 one-minute bars: 119 minutes from the first close to the last, a minute of market a second at speed 60.
    assert market_seconds(catalog, ["BTCUSDT.BINANCE"], 60) == 119 + FEED_END_MARGIN_SECONDS
    assert market_seconds(catalog, ["ETHUSDT.BINANCE"], 60) is None
