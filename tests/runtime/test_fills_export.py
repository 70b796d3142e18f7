"""Fills out of the ledger: ``livestrat run --fills-json/--fills-csv`` and ``livestrat fills`` on any ledger.

What is exported is what the ledger holds (read back, not the node's memory), in its order, with exact
decimals. ``livestrat fills`` only reads: pointed at the ledger of a strategy that trades, it must not take
the fence (which would stop that strategy) nor write anything, and a DSN's password never shows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from decimal import Decimal

import pytest

from livestrat.cli import main
from strategy_runtime.ledger.postgres import PostgresLedger
from strategy_runtime.ledger.reader import pick_strategy
from strategy_runtime.ledger.records import COLUMNS
from strategy_runtime.ledger.sqlite import SqliteLedger
from tests.support.ledger import KEY, make_fill, read_sqlite_fills
from tests.support.runtime import ROOT

EXAMPLE = str(ROOT / "examples" / "paper-ema-cross.yaml")


def run_example(tmp_path, *extra: str) -> str:
    assert main(["run", "--quiet", "--workdir", str(tmp_path / "work"), *extra, EXAMPLE]) == 0
    return str(tmp_path / "work" / "state" / "ema-cross-btc" / "ledger.sqlite")


def test_a_run_writes_the_ledgers_fills_as_json_and_csv(tmp_path, capsys):
    ledger = run_example(
        tmp_path, "--fills-json", str(tmp_path / "out" / "f.json"), "--fills-csv", str(tmp_path / "f.csv")
    )
    out = capsys.readouterr().out
    key = out.split("(strategy key ", 1)[1].split(")", 1)[0]
    recorded = read_sqlite_fills(ledger, key)
    assert len(recorded) > 100

    as_json = json.loads((tmp_path / "out" / "f.json").read_text())
    assert [row["trade_id"] for row in as_json] == [f.trade_id for f in recorded]
    assert [Decimal(row["price"]) for row in as_json] == [f.price for f in recorded]  # exact, as text
    assert all(isinstance(row["quantity"], str) for row in as_json)

    rows = list(csv.DictReader(io.StringIO((tmp_path / "f.csv").read_text())))
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["side"], Decimal(r["quantity"]), Decimal(r["commission"])) for r in rows] == [
        (f.side.value, f.quantity, f.commission) for f in recorded
    ]


def test_fills_lists_the_strategies_then_prints_one_by_name(tmp_path, capsys):
    ledger = run_example(tmp_path)
    capsys.readouterr()
    assert main(["fills", "--sqlite", ledger]) == 0
    listing = capsys.readouterr().out
    (key, count) = listing.strip().split("\t")
    assert key.endswith("/ema-cross-btc@run-1") and count.endswith(" fills")  # a paper run's key

    assert main(["fills", "--sqlite", ledger, "--strategy", "ema-cross-btc", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == int(count.split()[0])
    assert [row["trade_id"] for row in printed] == [f.trade_id for f in read_sqlite_fills(ledger, key)]


def test_a_name_two_runs_share_must_be_given_as_a_key(tmp_path, capsys):
    ledger = run_example(tmp_path)
    run_example(tmp_path)  # livestrat run keeps one strategy key per run
    capsys.readouterr()
    assert main(["fills", "--sqlite", ledger, "--strategy", "ema-cross-btc"]) == 2
    err = capsys.readouterr().err
    assert "names 2 strategy keys" in err and err.count("/ema-cross-btc") == 2


def test_no_ledger_named_says_how_to_name_one(capsys, monkeypatch):
    monkeypatch.delenv("LIVESTRAT_LEDGER_DSN", raising=False)
    assert main(["fills"]) == 2
    assert "--sqlite PATH" in capsys.readouterr().err


async def test_reading_a_ledger_in_use_leaves_its_fence_and_file_alone(tmp_path, capsys):
    path = tmp_path / "ledger.sqlite"
    async with SqliteLedger(path, KEY) as ledger:
        for i in range(3):
            ledger.record(make_fill(i))
        await ledger.flush()
        epoch = ledger._epoch
        before = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
        code = await asyncio.to_thread(main, ["fills", "--sqlite", str(path), "--strategy", KEY])
        assert code == 0
        assert ledger.fence_held and ledger._epoch == epoch
        assert ledger.fence_refusal() is None  # it may still trade
        after = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
        assert after == before  # not a byte written, no lock file taken
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 3


@pytest.mark.slow
async def test_fills_reads_postgresql_without_taking_the_fence(pg_database, tmp_path, capsys, monkeypatch):
    async with PostgresLedger(pg_database, KEY) as ledger:
        for i in range(4):
            ledger.record(make_fill(i))
        await ledger.flush()
        epoch = ledger._epoch
        dsn_file = tmp_path / "dsn"
        dsn_file.write_text(pg_database)
        monkeypatch.delenv("LIVESTRAT_LEDGER_DSN", raising=False)
        code = await asyncio.to_thread(main, ["fills", "--ledger-file", str(dsn_file), "--strategy", KEY])
        assert code == 0
        assert ledger.fence_held and ledger._epoch == epoch and ledger.fence_refusal() is None
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["trade_id"] for r in rows] == [make_fill(i).trade_id for i in range(4)]


@pytest.mark.slow
def test_a_refused_login_never_shows_the_password(pg_password_role, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIVESTRAT_LEDGER_DSN", pg_password_role.dsn("postgres", password="WRONG-pass-7c1d"))
    assert main(["fills"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the ledger database" in err
    assert "WRONG-pass-7c1d" not in err and pg_password_role.password not in err


def test_a_paper_pods_runs_are_named_by_their_key_and_a_strategy_with_several_runs_is_refused_with_them():
    keys = {"desk/ema@run-1": 3, "desk/ema@run-2": 5, "desk/other": 1}
    assert pick_strategy(keys, "desk/ema@run-2") == "desk/ema@run-2"
    assert pick_strategy({"desk/ema@run-4": 3}, "desk/ema") == "desk/ema@run-4"  # its only run
    assert pick_strategy({"desk/ema@run-4": 3}, "ema") == "desk/ema@run-4"
    for asked in ("desk/ema", "ema"):
        with pytest.raises(LookupError, match="names 2 strategy keys: desk/ema@run-1, desk/ema@run-2"):
            pick_strategy(keys, asked)
