"""``livestrat backtest FILE``: the example backtested from the command line, and errors a user can act on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.support.runtime import ROOT

# Every test here runs a process (helm, kubectl, livestrat): the slow tier (tests/support/tiers.py).
pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "paper-ema-cross.yaml"


def livestrat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livestrat.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def test_backtesting_the_example_writes_its_sample_and_summarises_the_fills(tmp_path):
    fills_path = tmp_path / "out" / "fills.json"
    result = livestrat("backtest", str(EXAMPLE), "--workdir", str(tmp_path), "--fills-json", str(fills_path))
    assert result.returncode == 0, result.stderr
    fills = json.loads(fills_path.read_text())
    out = result.stdout
    assert f"wrote a synthetic sample catalog to {tmp_path / 'catalogs' / 'ema-cross-btc'}: 3,000 one-minute" in out
    assert out.count("synthetic sample") == 1 and "synthetic sample" not in result.stderr  # said once
    assert f"fills: {len(fills):,} " in out and len(fills) > 100
    assert "realized PnL: " in out and "USDT" in out
    assert "position BTCUSDT.BINANCE: FLAT" in out  # EMACross closes its position on stop
    first = fills[0]
    assert set(first) >= {"trade_id", "venue_order_id", "side", "quantity", "price", "commission", "ts_event"}
    assert first["strategy_key"] == "local/ema-cross-btc" and first["instrument_id"] == "BTCUSDT.BINANCE"

    again = livestrat("backtest", str(EXAMPLE), "--workdir", str(tmp_path), "--fills-json", str(fills_path))
    assert again.returncode == 0 and "wrote a synthetic sample" not in again.stdout
    assert json.loads(fills_path.read_text()) == fills, "same spec, same data, same fills"


def test_a_strategy_that_cannot_be_imported_is_reported_with_its_path(tmp_path):
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["strategy"]["strategyPath"] = "my_strategies.trend:Missing"
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    result = livestrat("backtest", str(manifest), "--workdir", str(tmp_path))
    assert result.returncode == 2
    assert "spec.strategy.strategyPath 'my_strategies.trend:Missing'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_live_spec_is_not_backtested_and_the_message_says_what_to_change(tmp_path):
    result = livestrat("backtest", "examples/live-binance-testnet.yaml", "--workdir", str(tmp_path))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith("livestrat backtest: examples/live-binance-testnet.yaml: spec.mode is live")
    assert message.count("livestrat backtest") == 2  # the prefix, and "livestrat backtest takes only …"
    assert "spec.mode: paper" in message and "spec.venue.adapter: sandbox" in message
