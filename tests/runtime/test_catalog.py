"""The strategy's catalog: instruments by id with clear errors, and the deterministic data.sample."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest
from nautilus_trader.model.data import QuoteTick, TradeTick

from livestrat.api.spec import SampleData
from strategy_runtime.paper import catalog as catalog_module
from strategy_runtime.paper import sample_data
from strategy_runtime.paper.catalog import (
    SAMPLE_STAMP,
    CatalogError,
    bar_types_in,
    load_instruments,
    open_catalog,
    prepare_catalog,
    write_sample_catalog,
)
from strategy_runtime.paper.sample_data import SAMPLE_INSTRUMENTS, generate_series
from tests.support.catalogs import flat, write_price_path
from tests.support.runtime import BTC, BTC_BARS, paper_manifest, runtime_config

ETH = "ETHUSDT.BINANCE"


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_writes_byte_identical_catalogs(tmp_path):
    sample = SampleData(bars=300, seed=7)
    for name in ("a", "b"):
        write_sample_catalog(tmp_path / name, [BTC, ETH], sample, with_ticks=True)

    first, second = file_digests(tmp_path / "a"), file_digests(tmp_path / "b")
    assert first == second
    assert any(p.startswith("data/bar/") for p in first)
    assert any(p.startswith("data/quote_tick/") for p in first)
    assert not any(".livestrat-sample" in p for p in first), "the scratch directory is removed"


def test_another_seed_gives_other_prices_and_instruments_do_not_disturb_each_other():
    base = generate_series(BTC, bars=200, seed=1, start="2024-01-01T00:00:00Z")
    other_seed = generate_series(BTC, bars=200, seed=2, start="2024-01-01T00:00:00Z")
    assert [b.close for b in base.bars] != [b.close for b in other_seed.bars]
    # Each instrument has its own random stream: ETH's data does not depend on BTC being generated first.
    alone = generate_series(ETH, bars=50, seed=1, start="2024-01-01T00:00:00Z")
    again = generate_series(ETH, bars=50, seed=1, start="2024-01-01T00:00:00Z")
    assert [b.close for b in alone.bars] == [b.close for b in again.bars]


def test_sample_bars_close_on_the_minute_and_ticks_come_strictly_before_their_bar():
    series = generate_series(BTC, bars=30, seed=42, start="2024-01-01T00:00:00Z", with_ticks=True)
    minute = 60_000_000_000
    start = series.bars[0].ts_init - minute
    assert [b.ts_init - start for b in series.bars] == [(i + 1) * minute for i in range(30)]
    assert all(b.ts_event == b.ts_init for b in series.bars)
    for i, bar in enumerate(series.bars):
        ticks = [t for t in series.quotes + series.trades if bar.ts_init - minute < t.ts_init <= bar.ts_init]
        assert len(ticks) == 8
        assert all(t.ts_init < bar.ts_init for t in ticks), f"bar {i}: a tick shares the bar's timestamp"
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in series.bars)


def test_prepare_writes_the_sample_once_and_says_so(tmp_path, caplog):
    config = runtime_config(paper_manifest(bars=200), tmp_path / "catalog")
    with caplog.at_level(logging.WARNING, logger="livestrat.catalog"):
        first = prepare_catalog(config)
    assert first.sample_written
    assert "writing a synthetic sample" in caplog.text and "NOT MARKET DATA" in caplog.text
    assert [str(i.id) for i in first.instruments] == [BTC]
    assert first.bar_types == (BTC_BARS,)
    assert len(first.catalog.bars(bar_types=[BTC_BARS])) == 200

    caplog.clear()
    before = file_digests(tmp_path / "catalog")
    second = prepare_catalog(config)
    assert not second.sample_written
    assert "synthetic" not in caplog.text
    assert file_digests(tmp_path / "catalog") == before


def test_replaying_quotes_and_trades_makes_the_sample_write_ticks_too(tmp_path):
    manifest = paper_manifest(bars=100, replay={"speed": 0, "dataTypes": ["bars", "quotes", "trades"]})
    prepared = prepare_catalog(runtime_config(manifest, tmp_path / "catalog"))
    quotes = prepared.catalog.quote_ticks(instrument_ids=[BTC])
    trades = prepared.catalog.trade_ticks(instrument_ids=[BTC])
    assert len(quotes) == len(trades) == 400
    assert isinstance(quotes[0], QuoteTick) and isinstance(trades[0], TradeTick)


def test_a_missing_instrument_is_named_with_the_catalog_path(tmp_path):
    write_sample_catalog(tmp_path / "catalog", [BTC], SampleData(bars=100))
    catalog = open_catalog(tmp_path / "catalog")
    with pytest.raises(CatalogError) as caught:
        load_instruments(catalog, [BTC, ETH])
    message = str(caught.value)
    assert f"instrument(s) {ETH} not found in the catalog at {tmp_path / 'catalog'}" in message


def test_a_catalog_with_data_is_never_replaced_by_the_sample(tmp_path):
    # The catalog holds someone's BTC bars (no sample stamp); the spec asks for BTC and ETH with a
    # sample: no sample is mixed into real data, the missing instrument is an error.
    write_price_path(tmp_path / "catalog", flat(100))
    before = file_digests(tmp_path / "catalog")
    config = runtime_config(paper_manifest(bars=100, instruments=[BTC, ETH]), tmp_path / "catalog")
    with pytest.raises(CatalogError, match=ETH):
        prepare_catalog(config)
    assert file_digests(tmp_path / "catalog") == before


def test_a_sample_written_for_other_settings_is_stale_and_written_again(tmp_path):
    prepare_catalog(runtime_config(paper_manifest(bars=100, seed=3), tmp_path / "catalog"))

    # the spec's sample changed (seed, and ticks now replayed): the stamped sample is replaced, not reused
    manifest = paper_manifest(bars=120, seed=4, replay={"speed": 0, "dataTypes": ["bars", "quotes"]})
    again = prepare_catalog(runtime_config(manifest, tmp_path / "catalog"))
    assert again.sample_written
    assert again.stale_sample == "written for other data.sample settings or instruments"
    assert again.sample_notice(SampleData(bars=120, seed=4)).startswith(
        f"the sample catalog at {tmp_path / 'catalog'} was stale (written for other data.sample settings"
    )
    fresh = tmp_path / "fresh"
    write_sample_catalog(fresh, [BTC], SampleData(bars=120, seed=4), with_ticks=True)
    assert file_digests(tmp_path / "catalog") == file_digests(fresh)  # exactly what the generator writes now

    # and once it is current, it is left alone
    before = file_digests(tmp_path / "catalog")
    third = prepare_catalog(runtime_config(manifest, tmp_path / "catalog"))
    assert not third.sample_written and third.stale_sample is None
    assert file_digests(tmp_path / "catalog") == before


def test_a_sample_stamped_by_another_generator_is_written_again(tmp_path):
    config = runtime_config(paper_manifest(bars=100), tmp_path / "catalog")
    prepare_catalog(config)
    stamp_path = tmp_path / "catalog" / SAMPLE_STAMP
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, "generator": "v1:what an older generator wrote"}))

    again = prepare_catalog(config)
    assert again.sample_written
    assert again.stale_sample == "written by another version of the sample generator"
    assert json.loads(stamp_path.read_text()) == stamp


def test_a_reused_sample_is_checked_without_generating_it_again(tmp_path, monkeypatch):
    # 20,000 bars written once; checking that they are current makes only the generator's short probe
    config = runtime_config(paper_manifest(bars=20_000), tmp_path / "catalog")
    prepare_catalog(config)
    made: list[int] = []
    generate = sample_data.generate_series

    def counting(instrument_id: str, **kwargs):
        made.append(kwargs["bars"])
        return generate(instrument_id, **kwargs)

    monkeypatch.setattr(sample_data, "generate_series", counting)
    reused = prepare_catalog(config)
    assert not reused.sample_written and reused.stale_sample is None
    assert made and max(made) == sample_data.PROBE_BARS

    # and the probe is what tells a changed generator apart: another start price is another sample
    definition = sample_data.SAMPLE_INSTRUMENTS[BTC]
    changed = dataclasses.replace(definition, start_price=definition.start_price + 1)
    monkeypatch.setitem(sample_data.SAMPLE_INSTRUMENTS, BTC, changed)
    assert prepare_catalog(config).stale_sample == "written by another version of the sample generator"


def test_a_sample_whose_writing_was_cut_short_is_written_again(tmp_path, monkeypatch):
    config = runtime_config(paper_manifest(bars=100), tmp_path / "catalog")

    moved: list[str] = []

    def interrupted(source, destination):  # Ctrl-C once the stamp and the first directory are in place
        os.rename(source, destination)
        moved.append(str(destination))
        if len(moved) == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(catalog_module.os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            catalog_module.write_sample_catalog(tmp_path / "catalog", [BTC], SampleData(bars=100))
    assert moved[0].endswith(SAMPLE_STAMP) and "/data/" in moved[1]
    assert json.loads((tmp_path / "catalog" / SAMPLE_STAMP).read_text())["complete"] is False

    again = prepare_catalog(config)
    assert again.sample_written and again.stale_sample == "its writing did not finish"
    fresh = tmp_path / "fresh"
    write_sample_catalog(fresh, [BTC], SampleData(bars=100))
    assert file_digests(tmp_path / "catalog") == file_digests(fresh)


def test_a_catalog_holding_data_without_a_stamp_is_replayed_as_it_is_never_rewritten(tmp_path):
    # someone's BTC bars where the spec asks for a BTC sample (livestrat run's own directory or not)
    write_price_path(tmp_path / "catalog", flat(100))
    before = file_digests(tmp_path / "catalog")
    prepared = prepare_catalog(runtime_config(paper_manifest(bars=100), tmp_path / "catalog"))
    assert not prepared.sample_written and prepared.not_a_sample
    assert file_digests(tmp_path / "catalog") == before
    notice = prepared.sample_notice(SampleData(bars=100))
    assert notice.startswith(f"the catalog at {tmp_path / 'catalog'} holds data livestrat did not write as a sample")


def test_a_sample_is_never_written_into_a_catalog_holding_real_data(tmp_path):
    # real ETH data in the catalog, the spec asks for a BTC sample: no sample beside real data
    real = tmp_path / "catalog"
    write_price_path(real, flat(100), instrument_id=ETH)
    before = file_digests(real)
    with pytest.raises(CatalogError) as caught:
        prepare_catalog(runtime_config(paper_manifest(bars=100), real))
    message = str(caught.value)
    assert f"the catalog at {real} holds data that livestrat did not write as a sample" in message
    assert f"data/bar/{ETH}-1-MINUTE-LAST-EXTERNAL" in message
    assert "remove spec.data.sample" in message and "an empty catalog directory" in message
    assert file_digests(real) == before

    # nor when a stale sample of livestrat's would be replaced: the real data beside it stays untouched
    sampled = tmp_path / "sampled"
    prepare_catalog(runtime_config(paper_manifest(bars=100, seed=1), sampled))
    write_price_path(sampled, flat(100), instrument_id=ETH)
    before = file_digests(sampled)
    with pytest.raises(CatalogError, match="did not write as a sample"):
        prepare_catalog(runtime_config(paper_manifest(bars=100, seed=2), sampled))
    assert file_digests(sampled) == before


def test_the_sample_cannot_make_an_unknown_instrument(tmp_path):
    manifest = paper_manifest(bars=100, instruments=["SOLUSDT.BINANCE"])
    manifest["spec"]["strategy"]["config"]["instrument_id"] = "SOLUSDT.BINANCE"
    with pytest.raises(CatalogError) as caught:
        prepare_catalog(runtime_config(manifest, tmp_path / "catalog"))
    assert "SOLUSDT.BINANCE" in str(caught.value)
    assert all(known in str(caught.value) for known in SAMPLE_INSTRUMENTS)
    assert not (tmp_path / "catalog" / "data").exists()


def test_only_external_bar_types_of_the_instruments_are_found(tmp_path):
    write_sample_catalog(tmp_path / "catalog", [BTC, ETH], SampleData(bars=100))
    catalog = open_catalog(tmp_path / "catalog")
    assert bar_types_in(catalog, [BTC]) == [BTC_BARS]
    assert bar_types_in(catalog, [ETH, BTC]) == sorted([BTC_BARS, f"{ETH}-1-MINUTE-LAST-EXTERNAL"])
    assert bar_types_in(open_catalog(tmp_path / "empty"), [BTC]) == []
