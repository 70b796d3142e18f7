"""``livestrat run``: what ``make run`` does, as a user runs it, in a real process.

The summary's realized PnL (what the node's portfolio says) must equal the PnL this test
recomputes from the rows of the SQLite ledger file, read with the sqlite3 module.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import pytest
import yaml

from livestrat.api.runtime_config import ENV_LEDGER_DSN
from livestrat.api.spec import SampleData
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.paper.catalog import write_sample_catalog
from strategy_runtime.pnl import recompute_pnl
from tests.support.ledger import read_sqlite_fills
from tests.support.postgres import PasswordRole, fresh_database, password_role
from tests.support.runtime_process import EXAMPLE, LIVESTRAT, ROOT
from tests.support.secrets import SPECIAL_CHARACTERS, assert_no_trace, password_with

pytestmark = pytest.mark.slow


def livestrat(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LIVESTRAT, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs)


def summary_field(output: str, name: str) -> str:
    match = re.search(rf"^  {re.escape(name)}:\s+(.*)$", output, re.MULTILINE)
    assert match, f"no {name!r} in the summary:\n{output}"
    return match.group(1)


def test_make_runs_job_trades_and_its_pnl_equals_the_ledgers(tmp_path):
    result = livestrat("run", str(EXAMPLE.relative_to(ROOT)), "--workdir", str(tmp_path))
    out = result.stdout
    assert result.returncode == 0, result.stdout + result.stderr

    assert "wrote a synthetic sample catalog" in out
    assert re.search(r"^  replay +\d+%", out, re.MULTILINE), "progress lines while replaying"
    fills = int(summary_field(out, "fills"))
    assert fills > 0
    realized = summary_field(out, "realized PnL")
    amount, currency = realized.split()
    assert summary_field(out, "positions") == "flat"  # haltPolicy flatten
    assert summary_field(out, "risk") == "Active"
    assert "(agrees)" in summary_field(out, "ledger PnL")

    ledger = summary_field(out, "ledger")
    path, key = re.fullmatch(r"SQLite (\S+) \(strategy key (\S+)\)", ledger).groups()
    assert Path(path).is_relative_to(tmp_path)
    rows = read_sqlite_fills(path, key)
    assert len(rows) == fills
    recomputed = recompute_pnl(rows).instruments["BTCUSDT.BINANCE"]
    assert recomputed.quote_currency == currency
    assert recomputed.position == 0
    assert recomputed.net_realized_pnl.quantize(Decimal(amount)) == Decimal(amount)


def test_a_second_run_is_a_run_of_its_own_and_quiet_prints_only_the_summary(tmp_path):
    first = livestrat("run", str(EXAMPLE), "--workdir", str(tmp_path), "--quiet")
    second = livestrat("run", str(EXAMPLE), "--workdir", str(tmp_path), "--quiet")
    assert first.returncode == second.returncode == 0, second.stderr
    assert not re.search(r"^  replay ", second.stdout, re.MULTILINE)
    assert "wrote a synthetic" not in second.stdout  # the catalog is reused
    assert summary_field(first.stdout, "fills") == summary_field(second.stdout, "fills")
    keys = [re.search(r"strategy key (\S+)\)", r.stdout).group(1) for r in (first, second)]
    assert keys[0] != keys[1]  # each run a fresh simulated account, so a ledger key of its own


def test_ctrl_c_halts_a_local_run_like_a_pod_and_prints_the_summary(tmp_path):
    # a minute of market time per 0.01 s: 3000 bars take about 30 s, Ctrl-C comes long before
    process = subprocess.Popen(
        [LIVESTRAT, "run", str(EXAMPLE), "--workdir", str(tmp_path), "--speed", "6000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("running "):
                break
        time.sleep(2.0)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "(received SIGINT)" in out
    assert summary_field(out, "positions") == "flat"
    assert summary_field(out, "open orders") == "0"
    replayed = summary_field(out, "replayed")
    done, total = (int(n.replace(",", "")) for n in re.findall(r"[\d,]+", replayed)[:2])
    assert 0 < done < total


def test_live_strategies_are_refused_locally_with_what_to_change(tmp_path):
    result = livestrat("run", "examples/live-binance-testnet.yaml", "--workdir", "/nonexistent")
    assert result.returncode == 2
    message = result.stderr
    # which field, what is allowed, what to do
    assert "examples/live-binance-testnet.yaml: spec.mode is live" in message
    assert "livestrat run takes only spec.mode: paper" in message
    assert "kubectl apply -f examples/live-binance-testnet.yaml" in message

    # doing what it says gives a manifest livestrat run takes
    doc = yaml.safe_load((ROOT / "examples" / "live-binance-testnet.yaml").read_text())
    spec = doc["spec"]
    spec["mode"] = "paper"
    spec["venue"] = {**spec["venue"], "adapter": "sandbox", "name": "BINANCE", "accountType": "margin"}
    spec["venue"]["startingBalances"] = ["100000 USDT"]
    for removed in ("credentialsSecret", "testnet"):
        spec["venue"].pop(removed)
    spec["data"]["replay"] = {"speed": 0}
    spec["data"]["sample"] = {"bars": 300}
    assert all(f"spec.venue.{field}" in message for field in ("adapter: sandbox", "name: BINANCE", "startingBalances"))
    assert "spec.data.replay" in message and "remove spec.venue.credentialsSecret and spec.venue.testnet" in message
    paper = tmp_path / "paper.yaml"
    paper.write_text(yaml.safe_dump(doc))
    assert livestrat("validate", str(paper)).returncode == 0


def test_a_stale_sample_catalog_is_written_again_and_the_run_says_so(tmp_path):
    # a sample written in the run's own place for another seed and length (the manifest changed since)
    old = tmp_path / "catalogs" / "ema-cross-btc"
    write_sample_catalog(old, ["BTCUSDT.BINANCE"], SampleData(bars=500, seed=1))
    result = livestrat("run", str(EXAMPLE), "--workdir", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the sample catalog at {old} was stale (written for other data.sample settings or instruments)" in (
        result.stdout
    )
    assert "wrote it again: 3,000 one-minute bars per instrument, seed 42 (not market data)" in result.stdout
    assert summary_field(result.stdout, "replayed") == "3,000 of 3,000 events"

    again = livestrat("run", str(EXAMPLE), "--workdir", str(tmp_path), "--quiet")
    assert again.returncode == 0 and "wrote" not in again.stdout  # current now: reused as it is
    assert summary_field(again.stdout, "fills") == summary_field(result.stdout, "fills")


async def test_the_ledger_dsn_from_the_environment_makes_a_local_run_use_postgresql(tmp_path, pg_database):
    environ = {**os.environ, ENV_LEDGER_DSN: pg_database}
    result = await asyncio.to_thread(livestrat, "run", str(EXAMPLE), "--workdir", str(tmp_path), "--quiet", env=environ)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    where = DsnParts.parse(pg_database)
    assert f"ledger PostgreSQL {where} (from {ENV_LEDGER_DSN})" in out
    ledger = summary_field(out, "ledger")
    key = re.fullmatch(rf"PostgreSQL {re.escape(str(where))} \(strategy key (\S+)\)", ledger).group(1)
    assert not list(tmp_path.glob("**/*.sqlite"))  # no SQLite file
    assert not list((tmp_path / "state" / "ledger-spool").glob("*/*.jsonl"))  # the spool: every fill committed
    conn = await asyncpg.connect(pg_database)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM fills WHERE strategy_key = $1", key)
    finally:
        await conn.close()
    assert stored == int(summary_field(out, "fills")) > 0
    assert "(agrees)" in summary_field(out, "ledger PnL")

    # a DSN that is not one: the variable is named, its value is not echoed
    broken = await asyncio.to_thread(
        livestrat,
        "run",
        str(EXAMPLE),
        "--workdir",
        str(tmp_path),
        env={**environ, ENV_LEDGER_DSN: "host=db password=hunter2"},
    )
    assert broken.returncode == 2
    assert f"livestrat run: the ledger DSN in {ENV_LEDGER_DSN} is not a PostgreSQL URI" in broken.stderr
    assert "hunter2" not in broken.stdout + broken.stderr


async def test_a_local_run_takes_its_dsn_from_a_file_or_the_environment_never_from_the_command_line(
    tmp_path, pg_dsn, pg_password_role: PasswordRole
):
    password = password_with(*SPECIAL_CHARACTERS)
    places: dict[str, str] = {}
    async with (
        password_role(pg_password_role, "ledger_local_run", password) as role,
        fresh_database(pg_dsn, owner=role.name) as owned,
    ):
        database = urlsplit(owned).path.lstrip("/")
        dsn = role.dsn(database, quote(password, safe=""))

        # on the command line (where ps shows it to everyone): refused before anything runs
        given = await asyncio.to_thread(livestrat, "run", str(EXAMPLE), "--workdir", str(tmp_path), "--ledger", dsn)
        places["--ledger"] = given.stdout + given.stderr
        assert given.returncode == 2
        assert ENV_LEDGER_DSN in given.stderr and "--ledger-file" in given.stderr, given.stderr
        assert not (tmp_path / "catalogs").exists()  # nothing ran

        # in a file: the run records its fills in PostgreSQL and names the ledger, not the password
        file = tmp_path / "ledger.dsn"
        file.write_text(dsn + "\n")
        file.chmod(0o600)
        command = [LIVESTRAT, "run", str(EXAMPLE), "--workdir", str(tmp_path), "--quiet", "--ledger-file", str(file)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        places["cmdline"] = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        out, err = await asyncio.to_thread(process.communicate, timeout=120)
        places["--ledger-file"] = out + err
        assert process.returncode == 0, out + err
        where = f"{role.host}:{role.port}/{database}"
        assert f"ledger PostgreSQL {where} (from --ledger-file {file})" in out
        key = re.fullmatch(rf"PostgreSQL {re.escape(where)} \(strategy key (\S+)\)", summary_field(out, "ledger"))
        conn = await asyncpg.connect(owned)
        try:
            stored = await conn.fetchval("SELECT count(*) FROM fills WHERE strategy_key = $1", key.group(1))
        finally:
            await conn.close()
        assert stored == int(summary_field(out, "fills")) > 0

        # malformed in the environment (a '/', '?', '#', '@' and '%' left as they are): which part, what to do
        environ = {**os.environ, ENV_LEDGER_DSN: role.dsn(database)}
        broken = await asyncio.to_thread(livestrat, "run", str(EXAMPLE), "--workdir", str(tmp_path), env=environ)
        places["malformed"] = broken.stdout + broken.stderr
        assert broken.returncode == 2
        assert f"livestrat run: the ledger DSN in {ENV_LEDGER_DSN}" in broken.stderr, broken.stderr
        assert "percent-encode" in broken.stderr
    assert_no_trace([password], **places)
