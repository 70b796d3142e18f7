"""``livestrat validate --strict``: what keeps a valid manifest from trading as written, found before it runs.

The plain ``validate`` checks what the API server checks. A manifest can pass it and still run with a
misspelt strategy setting, on bars the catalog does not hold, or over a window with no data: such a
run starts, replays nothing, and exits 0 with 0 fills. ``--strict`` imports the strategy, builds its
config and the venue's, and reads the catalog (the sample the pod would write, written to scratch).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from livestrat.cli import main
from tests.support.catalogs import write_price_path
from tests.support.runtime import ROOT

EXAMPLE = yaml.safe_load((ROOT / "examples" / "paper-ema-cross.yaml").read_text())
SAMPLE_START = "2024-01-01T00:00:00Z"  # the example's sample: 3,000 one-minute bars from here


def manifest(tmp_path: Path, change=None) -> str:
    doc = copy.deepcopy(EXAMPLE)
    if change is not None:
        change(doc["spec"])
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def strict(tmp_path: Path, path: str, *extra: str) -> int:
    return main(["validate", "--strict", "--workdir", str(tmp_path / "work"), *extra, path])


def test_the_example_passes(tmp_path, capsys):
    assert strict(tmp_path, manifest(tmp_path)) == 0
    out = capsys.readouterr().out
    assert ": ok (ema-cross-btc, strict" in out
    assert "error" not in out and "warning" not in out
    assert not (tmp_path / "work").exists()  # the sample was checked in scratch, nothing left behind


def test_a_misspelt_strategy_setting_fails_with_what_it_meant(tmp_path, capsys):
    def typo(spec):
        spec["strategy"]["config"]["fast_ema_perod"] = spec["strategy"]["config"].pop("fast_ema_period")

    path = manifest(tmp_path, typo)
    assert main(["validate", path]) == 0  # the API server cannot see inside spec.strategy.config
    capsys.readouterr()
    assert strict(tmp_path, path) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "spec.strategy.config.fast_ema_perod" in out and "did you mean 'fast_ema_period'" in out


def test_a_replay_window_outside_the_data_fails_naming_both(tmp_path, capsys):
    def later(spec):
        spec["data"]["replay"]["start"] = "2025-06-01T00:00:00Z"

    assert strict(tmp_path, manifest(tmp_path, later)) == 1
    out = capsys.readouterr().out
    assert "2025-06-01" in out and "2024-01-01" in out and "nothing would be replayed" in out


def test_bars_the_catalog_does_not_hold_fail_naming_what_it_holds(tmp_path, capsys):
    def five_minutes(spec):
        spec["strategy"]["config"]["bar_type"] = "BTCUSDT.BINANCE-5-MINUTE-LAST-EXTERNAL"

    assert strict(tmp_path, manifest(tmp_path, five_minutes)) == 1
    out = capsys.readouterr().out
    assert "spec.strategy.config.bar_type: BTCUSDT.BINANCE-5-MINUTE-LAST-EXTERNAL is not in the catalog" in out
    assert "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL" in out  # what it holds


def test_bars_aggregated_from_bars_the_catalog_holds_pass(tmp_path, capsys):
    def aggregated(spec):
        spec["strategy"]["config"]["bar_type"] = "BTCUSDT.BINANCE-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"

    assert strict(tmp_path, manifest(tmp_path, aggregated)) == 0, capsys.readouterr().out


def test_bars_aggregated_from_unreplayed_ticks_warn(tmp_path, capsys):
    def from_trades(spec):
        spec["strategy"]["config"]["bar_type"] = "BTCUSDT.BINANCE-100-TICK-LAST-INTERNAL"

    assert strict(tmp_path, manifest(tmp_path, from_trades)) == 0
    out = capsys.readouterr().out
    assert "warning: spec.strategy.config.bar_type" in out and "aggregated from ticks" in out


def test_a_catalog_without_the_instrument_fails(tmp_path, capsys):
    def no_sample(spec):
        del spec["data"]["sample"]

    empty = tmp_path / "catalog"
    empty.mkdir()
    assert strict(tmp_path, manifest(tmp_path, no_sample), "--catalog", str(empty)) == 1
    assert "BTCUSDT.BINANCE not found in the catalog" in capsys.readouterr().out


def test_no_catalog_at_all_says_how_to_point_at_one(tmp_path, capsys):
    def no_sample(spec):
        del spec["data"]["sample"]

    assert strict(tmp_path, manifest(tmp_path, no_sample)) == 1
    assert "pass --catalog DIR" in capsys.readouterr().out


def test_the_catalog_checked_is_only_read(tmp_path, capsys):
    # A catalog with the example's data: checked as it is, nothing written into it.
    path = manifest(tmp_path)
    catalog = tmp_path / "work" / "catalogs" / "ema-cross-btc"
    assert main(["run", "--workdir", str(tmp_path / "work"), "--quiet", path]) == 0
    before = sorted((p, p.stat().st_mtime_ns) for p in catalog.rglob("*"))
    capsys.readouterr()
    assert strict(tmp_path, path) == 0
    assert sorted((p, p.stat().st_mtime_ns) for p in catalog.rglob("*")) == before


@pytest.mark.parametrize("adapter", ["binance", "okx"])
def test_a_live_venue_option_the_adapter_lacks_fails_without_credentials(tmp_path, capsys, monkeypatch, adapter):
    for name in ("LIVESTRAT_VENUE_API_KEY", "LIVESTRAT_VENUE_API_SECRET", "LIVESTRAT_VENUE_API_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)

    def live(spec):
        spec["mode"] = "live"
        spec["venue"] = {
            "adapter": adapter,
            "accountType": "spot",
            "credentialsSecret": {"name": "keys"},
            "options": {"no_such_option": "1"},
        }
        spec["instruments"] = ["BTCUSDT.BINANCE"] if adapter == "binance" else ["BTC-USDT.OKX"]
        spec["strategy"]["config"]["instrument_id"] = spec["instruments"][0]
        spec["strategy"]["config"]["bar_type"] = f"{spec['instruments'][0]}-1-MINUTE-LAST-EXTERNAL"
        spec["data"] = {"catalog": {"emptyDir": {}}}

    path = manifest(tmp_path, live)
    assert main(["validate", path]) == 0, capsys.readouterr().out
    capsys.readouterr()
    assert strict(tmp_path, path) == 1
    out = capsys.readouterr().out
    assert "spec.venue.options.no_such_option" in out
    assert "validate-offline" not in out  # the placeholder credentials are never shown


def test_a_run_over_a_window_without_data_says_so_loudly(tmp_path, capsys):
    def later(spec):
        spec["data"]["replay"]["start"] = "2025-06-01T00:00:00Z"

    assert main(["run", "--workdir", str(tmp_path / "work"), "--quiet", manifest(tmp_path, later)]) == 0
    captured = capsys.readouterr()
    assert "nothing would be replayed (0 bars, 0 fills)" in captured.err
    assert "WARNING:        nothing was replayed" in captured.out


def test_paper_on_a_live_feed_passes_without_a_catalog_and_names_a_venue_that_cannot_feed(tmp_path, capsys):
    def live_feed(spec):
        spec["venue"] = {"adapter": "binance", "accountType": "spot", "startingBalances": ["10000 USDT"]}
        del spec["data"]["replay"], spec["data"]["sample"]

    assert strict(tmp_path, manifest(tmp_path, live_feed)) == 0
    assert ": ok (ema-cross-btc, strict" in capsys.readouterr().out

    def option_it_lacks(spec):
        live_feed(spec)
        spec["venue"]["options"] = {"no_such_option": "1"}

    assert strict(tmp_path, manifest(tmp_path, option_it_lacks)) == 1
    assert "no_such_option" in capsys.readouterr().out


def test_a_catalog_holding_other_real_data_fails_as_the_run_would_refuse_it(tmp_path, capsys):
    real = write_price_path(tmp_path / "catalog", [2_300.0] * 50, instrument_id="ETHUSDT.BINANCE")
    assert strict(tmp_path, manifest(tmp_path), "--catalog", str(real)) == 1
    out = capsys.readouterr().out
    assert f"the catalog at {real} holds data that livestrat did not write as a sample" in out
    assert main(["run", "--workdir", str(tmp_path / "work"), "--catalog", str(real), manifest(tmp_path)]) == 2


def test_a_strategy_next_to_the_manifest_is_found_as_livestrat_run_finds_it(tmp_path, capsys):
    desk = tmp_path / "desk"
    desk.mkdir()
    (desk / "strict_desk_strategy.py").write_text(
        "from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig\n"
    )

    def own_file(spec):
        spec["strategy"]["strategyPath"] = "strict_desk_strategy:EMACross"
        spec["strategy"]["configPath"] = "strict_desk_strategy:EMACrossConfig"

    path = Path(manifest(tmp_path, own_file)).rename(desk / "strategy.yaml")
    assert strict(tmp_path, str(path)) == 0, capsys.readouterr().out
