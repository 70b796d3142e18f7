"""``livestrat report``: a run's report (equity and drawdown, NautilusTrader's statistics, commissions, fills,
the paper-vs-backtest comparison), and its figures equal to what the ledger recomputes on its own.

The ledger's side of every check is read back independently: the fills with the test's own SQL reader
(``read_sqlite_fills``) or asyncpg, the PnL with the ledger's recomputation (``strategy_runtime.pnl``), never
with the report's code.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import struct
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

from livestrat.cli import main
from strategy_runtime.ledger.export import fills_csv
from strategy_runtime.ledger.postgres import PostgresLedger
from strategy_runtime.ledger.sqlite import SqliteLedger
from strategy_runtime.local.backtest import run_backtest
from strategy_runtime.local.config import local_runtime_config
from strategy_runtime.pnl import recompute_pnl
from strategy_runtime.slippage import slippage_bps
from tests.support.ledger import KEY, make_fill, read_sqlite_fills
from tests.support.postgres import PasswordRole, fresh_database, password_role
from tests.support.runtime import ROOT
from tests.support.secrets import SPECIAL_CHARACTERS, assert_no_trace, password_with

EXAMPLE = ROOT / "examples" / "paper-ema-cross.yaml"
USDT = Decimal("0.00000001")  # NautilusTrader books USDT at 8 decimals


def run_example(work: Path, capsys, manifest: Path = EXAMPLE) -> str:
    """``livestrat run`` of ``manifest``; the strategy key its summary names."""
    assert main(["run", "--quiet", "--workdir", str(work), str(manifest)]) == 0
    out = capsys.readouterr().out
    return out.split("(strategy key ", 1)[1].split(")", 1)[0]


def printed_paths(out: str) -> dict[str, Path]:
    """The files ``livestrat report`` says it wrote: ``  report.html: PATH`` lines."""
    return {m[1]: Path(m[2]) for m in re.finditer(r"^\s+(\S+\.(?:html|png|csv|json)):\s+(\S+)$", out, re.M)}


def ledger_figures(fills) -> dict:
    """What the ledger says, recomputed by the ledger's own book: realized PnL (as NautilusTrader nets it,
    at its precision), commissions and fills per currency."""
    book = recompute_pnl(fills)
    realized: dict[str, Decimal] = {}
    for each in book.instruments.values():
        realized[each.currency] = realized.get(each.currency, Decimal(0)) + each.net_realized_pnl
    return {
        "fills": len(fills),
        "realized": {c: a.quantize(USDT) for c, a in realized.items()},
        "commissions": dict(book.commissions),
    }


def report_figures(summary: dict) -> dict:
    return {
        "fills": summary["fills"],
        "realized": {c: Decimal(a) for c, a in summary["realized_pnl"].items()},
        "commissions": {c: Decimal(a) for c, a in summary["commissions"].items()},
    }


def assert_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert len(data) > 20_000 and width >= 600 and height >= 400, (len(data), width, height)
    return width, height


def test_a_paper_runs_report_shows_the_ledgers_figures_and_the_backtest_of_the_same_window(tmp_path, capsys):
    work = tmp_path / "work"
    key = run_example(work, capsys)
    ledger = work / "state" / "ema-cross-btc" / "ledger.sqlite"

    assert main(["report", str(EXAMPLE), "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    paths = printed_paths(out)
    assert set(paths) == {"report.html", "equity.png", "fills.csv", "summary.json"}, out
    assert all(p.parent == paths["report.html"].parent for p in paths.values())
    assert paths["report.html"].parent.parent == work / "reports" / "ema-cross-btc"  # next to the ledger

    fills = read_sqlite_fills(str(ledger), key)
    assert len(fills) > 100
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["strategy_key"] == key and summary["kind"] == "paper run"
    assert report_figures(summary) == ledger_figures(fills)
    # final equity: the spec's starting balance and the realized PnL, nothing else (the run ends flat)
    assert Decimal(summary["final_equity"]["USDT"]) == Decimal(100000) + ledger_figures(fills)["realized"]["USDT"]
    assert summary["open_positions"] == []
    # NautilusTrader's PortfolioAnalyzer, fed the ledger's fills as its own Positions
    stats = summary["statistics"]
    assert (
        Decimal(str(stats["pnls"]["USDT"]["PnL (total)"])).quantize(USDT) == ledger_figures(fills)["realized"]["USDT"]
    )
    assert 0 < stats["pnls"]["USDT"]["Win Rate"] < 1 and "Sharpe Ratio (252 days)" in stats["returns"]

    # the fills table is the ledger's, row for row, as `livestrat fills` writes it
    assert paths["fills.csv"].read_text() == fills_csv(fills)

    # paper against the backtest of the same spec over the same catalog: the same fills, the same PnL
    comparison = summary["comparison"]
    backtest = run_backtest(local_runtime_config(EXAMPLE, workdir=work)).summary
    assert comparison["backtest_fills"] == len(backtest.fills) == comparison["paper_fills"] == len(fills)
    assert comparison["matched"] == len(fills) and comparison["price_differences"] == []
    assert comparison["only_in_paper"] == comparison["only_in_backtest"] == []
    assert {c: Decimal(a) for c, a in comparison["backtest_realized_pnl"].items()} == {
        c: Decimal(a).quantize(USDT) for c, a in backtest.realized_pnl.items()
    }
    assert comparison["agrees"] is True

    assert_png(paths["equity.png"])
    html = paths["report.html"].read_text()
    assert "Win Rate" in html and "Sharpe Ratio (252 days)" in html
    assert f"{len(fills)} fills" in html and key in html
    assert str(ledger_figures(fills)["realized"]["USDT"]) in html
    assert "Paper against the backtest of the same window" in html
    assert "<script src=" not in html  # plotly embedded: the page works offline
    assert html.count(fills[-1].trade_id) == 1  # the fills table


def test_a_backtest_says_how_to_make_its_report_which_needs_no_ledger(tmp_path, capsys):
    work = tmp_path / "work"
    assert main(["backtest", str(EXAMPLE), "--workdir", str(work)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  report:"))
    command = line.split("report:", 1)[1].split()
    assert command == ["livestrat", "report", str(EXAMPLE), "--workdir", str(work), "--backtest"]
    assert main(command[1:]) == 0
    paths = printed_paths(capsys.readouterr().out)
    summary = json.loads(paths["summary.json"].read_text())
    backtest = run_backtest(local_runtime_config(EXAMPLE, workdir=work)).summary
    assert summary["kind"] == "backtest" and summary["fills"] == len(backtest.fills) > 100
    realized = {c: Decimal(a) for c, a in summary["realized_pnl"].items()}
    assert realized == {c: Decimal(a).quantize(USDT) for c, a in backtest.realized_pnl.items()}
    assert summary["comparison"] is None
    assert paths["report.html"].parent.parent == work / "reports" / "ema-cross-btc"
    assert_png(paths["equity.png"])


def test_the_run_summary_says_how_to_make_its_report(tmp_path, capsys):
    work, catalog = tmp_path / "work", tmp_path / "my-catalog"
    assert main(["run", "--quiet", "--workdir", str(work), "--catalog", str(catalog), str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    key = out.split("(strategy key ", 1)[1].split(")", 1)[0]
    line = next(x for x in out.splitlines() if x.startswith("  report:"))
    command = line.split("report:", 1)[1].split()
    assert command == [
        *("livestrat", "report", str(EXAMPLE)),
        *("--workdir", str(work), "--catalog", str(catalog), "--strategy", key),
    ]
    assert main(command[1:]) == 0  # as printed, it makes the report of that run, over that catalog
    summary = json.loads(printed_paths(capsys.readouterr().out)["summary.json"].read_text())
    assert summary["strategy_key"] == key and summary["instruments"] == "catalog"
    assert summary["comparison"]["agrees"] is True


def test_a_run_without_fills_gets_a_report_that_says_so(tmp_path, capsys):
    # 100 bars: EMACross's slow average (over 500 bars here) never forms, so it never trades
    manifest = tmp_path / "quiet.yaml"
    text = EXAMPLE.read_text().replace("bars: 3000", "bars: 100").replace("slow_ema_period: 20", "slow_ema_period: 500")
    manifest.write_text(text)
    work = tmp_path / "work"
    key = run_example(work, capsys, manifest)

    assert main(["report", str(manifest), "--workdir", str(work), "--no-compare"]) == 0
    out = capsys.readouterr().out
    assert "no fills" in out
    paths = printed_paths(out)
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["strategy_key"] == key and summary["fills"] == 0 and summary["realized_pnl"] == {}
    assert summary["final_equity"] == {"USDT": "100000"}
    assert "no fills" in paths["report.html"].read_text()
    assert list(csv.reader(io.StringIO(paths["fills.csv"].read_text()))) == [next(csv.reader([fills_csv([])]))]
    assert_png(paths["equity.png"])


def test_clear_errors_for_a_missing_ledger_an_unknown_key_and_a_manifest_never_run(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LIVESTRAT_LEDGER_DSN", raising=False)
    missing = tmp_path / "nowhere" / "ledger.sqlite"
    assert main(["report", "--sqlite", str(missing)]) == 2
    assert f"no ledger file at {missing}" in capsys.readouterr().err

    assert main(["report", str(EXAMPLE), "--workdir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no ledger file at" in err and "livestrat run" in err

    work = tmp_path / "work"
    key = run_example(work, capsys)
    ledger = str(work / "state" / "ema-cross-btc" / "ledger.sqlite")
    assert main(["report", "--sqlite", ledger, "--strategy", "desk/no-such-strategy"]) == 2
    err = capsys.readouterr().err
    assert "holds no fills of 'desk/no-such-strategy'" in err and key in err  # and names the keys it holds
    assert not (work / "reports").exists()

    assert main(["report"]) == 2
    assert "--sqlite PATH" in capsys.readouterr().err

    # a live manifest: its fills are in its PostgreSQL ledger, and the message says how to report from there
    assert main(["report", str(ROOT / "examples" / "live-binance-testnet.yaml"), "--workdir", str(work)]) == 2
    err = capsys.readouterr().err
    assert "spec.mode is live" in err and "livestrat report --ledger-file PATH --strategy NAMESPACE/NAME" in err


async def test_a_live_strategys_report_from_postgresql_never_shows_the_password(
    tmp_path, pg_dsn, pg_password_role: PasswordRole, capsys, monkeypatch
):
    password = password_with(*SPECIAL_CHARACTERS)
    fills = [make_fill(i) for i in range(40)]
    async with (
        password_role(pg_password_role, "ledger_report", password) as role,
        fresh_database(pg_dsn, owner=role.name) as owned,
    ):
        database = urlsplit(owned).path.lstrip("/")
        dsn = role.dsn(database, quote(password, safe=""))
        async with PostgresLedger(dsn, KEY, runs=False) as ledger:  # a live strategy's runtime wrote them
            for fill in fills:
                ledger.record(fill)
            await ledger.flush()
        monkeypatch.delenv("LIVESTRAT_LEDGER_DSN", raising=False)
        work = tmp_path / "work"
        dsn_file = tmp_path / "ledger.dsn"
        args = ["report", "--ledger-file", str(dsn_file), "--strategy", KEY, "--workdir", str(work)]

        # on the command line (where ps shows it): refused, and the message holds nothing of it
        assert await asyncio.to_thread(main, ["report", "--ledger", dsn, "--strategy", KEY]) == 2
        given = capsys.readouterr()
        assert "--ledger-file" in given.err
        assert_no_trace([password], out=given.out, err=given.err)

        dsn_file.write_text(role.dsn(database, "WRONG-pass-5e2b") + "\n")  # refused: says so, not the password
        assert await asyncio.to_thread(main, args) == 2
        refused = capsys.readouterr()
        assert "cannot connect to the ledger database" in refused.err
        assert "WRONG-pass-5e2b" not in refused.err + refused.out and not work.exists()

        dsn_file.write_text(dsn + "\n")
        assert await asyncio.to_thread(main, args) == 0
    captured = capsys.readouterr()
    paths = printed_paths(captured.out)
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["kind"] == "ledger" and summary["strategy_key"] == KEY
    assert summary["ledger"] == f"PostgreSQL {role.host}:{role.port}/{database}"
    assert report_figures(summary) == ledger_figures(fills)
    assert paths["fills.csv"].read_text() == fills_csv(fills)
    assert_png(paths["equity.png"])
    html = paths["report.html"].read_text()
    assert "Win Rate" in html
    places = {name: path.read_text() for name, path in paths.items() if name != "equity.png"}
    assert_no_trace(
        [password], out=captured.out, err=captured.err, **{k.replace(".", "_"): v for k, v in places.items()}
    )
    assert password.encode() not in paths["equity.png"].read_bytes()


def test_a_strategy_that_has_not_traded_yet_gets_a_report_that_says_so_and_a_key_never_seen_is_refused(
    tmp_path, capsys
):
    path = tmp_path / "ledger.sqlite"

    async def start_without_trading() -> None:  # a live strategy's runtime took its fence, no fill yet
        async with SqliteLedger(path, KEY, runs=False):
            pass

    asyncio.run(start_without_trading())
    assert main(["report", "--sqlite", str(path), "--strategy", KEY, "--workdir", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out
    assert f"{KEY}: no fills" in out
    summary = json.loads(printed_paths(out)["summary.json"].read_text())
    assert (summary["fills"], summary["realized_pnl"], summary["final_equity"]) == (0, {}, {})

    assert main(["report", "--sqlite", str(path), "--strategy", "desk/other"]) == 2
    err = capsys.readouterr().err
    assert "holds no fills of 'desk/other'" in err and "never ran" in err


async def test_a_report_shows_the_slippage_of_the_fills_that_have_an_arrival_price(tmp_path, capsys):
    # A live strategy's ledger: fills stored before arrival prices existed (None), then fills up to 30 USDT
    # away from where their orders met the market, better or worse.
    fills = [
        make_fill(i, arrival_price=None if i < 5 else make_fill(i).price + Decimal((i % 5) - 1) * 10) for i in range(30)
    ]
    ledger = tmp_path / "ledger.sqlite"
    async with SqliteLedger(ledger, KEY, runs=False) as writer:
        for fill in fills:
            writer.record(fill)
        await writer.flush()

    args = ["report", "--sqlite", str(ledger), "--strategy", KEY, "--workdir", str(tmp_path / "work")]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    paths = printed_paths(out)

    expected = slippage_bps(read_sqlite_fills(str(ledger), KEY))  # the status's function, on the ledger's rows
    assert expected is not None and expected != 0
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["slippage_bps"] == f"{expected:f}"
    assert summary["fills_with_arrival_price"] == 25
    assert f"{expected:f} bps over 25 of 30 fills" in paths["report.html"].read_text()
    assert f"slippage:       {expected:f} bps" in out
