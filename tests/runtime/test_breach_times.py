"""A risk breach is timed twice: on the wall clock (when the runtime saw it: the acknowledgement's
value) and in market time (the time of the event that broke the limit: a replay's data, the
venue's latest event live). The guard, the status, the ledger's halt record and the summary of
``livestrat run`` carry both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strategy_runtime.ledger import SqliteLedger
from strategy_runtime.local.run import print_summary
from strategy_runtime.timestamps import utc_text
from tests.support.catalogs import flat, write_price_path
from tests.support.runtime import local_run
from tests.support.runtime_process import paper_spec, strategy_config
from tests.support.scripted import scripted_strategy


async def test_a_breach_in_a_replay_is_timed_in_market_time_as_well_as_wall_time(tmp_path, capsys):
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    steps = [{"bar": 5, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "entry"}]
    spec = paper_spec(
        scripted_strategy(str(tmp_path / "events.jsonl"), steps=steps),
        risk={"maxPosition": 0.05, "onBreach": "HaltInPlace"},
        haltPolicy="flatten",
    )
    config, _ = strategy_config(tmp_path, spec, catalog=catalog)
    run = await local_run(config)

    entry = run.ledger_fills[0]  # the fill that made the position too big, at its bar's market time
    market = datetime.fromtimestamp(entry.ts_event / 1e9, UTC)
    breach = run.runtime.guard.breach
    assert breach is not None and breach.limit == "maxPosition"
    assert breach.market_at == market
    assert breach.at - market > timedelta(days=1)  # the wall clock: today, not the catalog's day

    risk = run.outcome.snapshot.risk
    assert risk.breached_at == utc_text(breach.at)  # the acknowledgement's value stays the wall time
    assert risk.breached_at_market == utc_text(market)

    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        halt = await ledger.active_halt()
    assert halt is not None
    assert (halt.breached_at, halt.breached_at_market) == (breach.at, market)

    print_summary(config, run.outcome, 1.0)
    risk_line = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("risk:"))
    assert f"since {risk.breached_at} (market time {risk.breached_at_market})" in risk_line, risk_line
