"""``livestrat backtest FILE``: the same spec as a NautilusTrader ``BacktestNode``, the runtime's oracle.

A paper replay of a spec must produce the same fills as this backtest over the same catalog
(docs/runtime.md, "Backtest oracle"). Everything that decides fills is shared with the paper
node rather than repeated: the strategy (``strategy_source``), the simulated venue
(``paper.venue``), the catalog and its sample (``paper.catalog``), the replay window and data
types, the trader id and the RiskEngine limits, and the runtime's risk guard: its order gate
(``maxNotionalPerOrder`` on MARGIN accounts too, orders it cannot price), its post-trade limits,
and on a breach the risk halt (``BacktestHalt``).

``run_backtest(config) -> BacktestResult`` runs it in-process; ``run_backtest_command(args)``
is the CLI (summary on stdout, ``--fills-json PATH`` writes every fill).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import (
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestRunConfig,
    LoggingConfig,
    RiskEngineConfig,
)
from nautilus_trader.model.enums import OrderStatus, TradingState
from nautilus_trader.model.events import OrderFilled

from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import HaltPolicy, Mode, ReplayDataType
from strategy_runtime.halt import Containment
from strategy_runtime.ledger.export import write_fills
from strategy_runtime.ledger.records import FillRecord, from_order_filled
from strategy_runtime.local import figures
from strategy_runtime.local.import_path import add_strategy_directories
from strategy_runtime.local.progress import ThrottledProgress
from strategy_runtime.local.summary import TradingSummary, summarize
from strategy_runtime.node import CONFIGURATION_ERRORS, front_doors, nautilus_log_level, trader_id_for
from strategy_runtime.paper.catalog import StrategyCatalog, prepare_catalog
from strategy_runtime.paper.sample_data import SampleProgress
from strategy_runtime.paper.venue import paper_venue
from strategy_runtime.risk.breach import Breach
from strategy_runtime.risk.guard import RiskGuard, RiskGuardConfig
from strategy_runtime.run_report.hint import report_command_line
from strategy_runtime.strategy_source import load_strategy


class BacktestError(Exception):
    """The spec cannot be backtested."""


@dataclass(frozen=True)
class BacktestResult:
    summary: TradingSummary
    events: int  # data points the engine iterated
    wall_seconds: float
    sample_written: bool
    sample_notice: str | None = None  # what a command prints about the sample it wrote

    @property
    def fills(self) -> list[FillRecord]:
        return self.summary.fills


class BacktestHalt(Containment):
    """The runtime's risk halt in a backtest (``StrategyRuntime`` on a breach: ``TradingHalt.contain``).

    The runtime contains a breach in a task of the event loop, so after the message handler that broke
    the limit is over (a strategy that goes on submitting in the same ``on_bar`` has its orders denied
    first) and before the replay hands over the next data point. The backtest does it in a time alert at
    the breach's market time, which the engine fires before the next data point reaches the venue:
    RiskEngine REDUCING, every order cancelled, under ``haltPolicy: flatten`` every position closed with
    the halt's reduce-only market order (``LIVESTRAT_HALT``), RiskEngine HALTED. The simulated venue
    answers commands as they come, so nothing is waited for.
    """

    ALERT_NAME = "livestrat-risk-halt"

    def __init__(self, engine: BacktestEngine, guard: RiskGuard, policy: str) -> None:
        super().__init__(engine, guard)
        self._policy = policy
        self.breach: Breach | None = None

    def on_breach(self, breach: Breach) -> None:
        if self.breach is not None:
            return
        self.breach = breach
        clock = self._kernel.clock
        clock.set_time_alert_ns(self.ALERT_NAME, clock.timestamp_ns(), self._contain)

    def _contain(self, _event: Any) -> None:
        risk_engine = self._kernel.risk_engine
        risk_engine.set_trading_state(TradingState.REDUCING)
        queued = {o.client_order_id for o in self._guard.orders_on_their_way()}
        for order in self.open_orders():
            # As the runtime's halt (``TradingHalt.cancel_all``): an order on its way to the venue is left to the
            # venue's answer; anything else INITIALIZED is held inside the node (an emulated bracket's stop-loss and
            # take-profit, an execution algorithm's primary order) and is cancelled at once.
            if order.status == OrderStatus.INITIALIZED and order.client_order_id in queued:
                continue
            self._cancel(order)
        if self._policy == HaltPolicy.FLATTEN:
            for position in self.cache.positions_open():
                if not self._closing(position):
                    self._close(position)
        risk_engine.set_trading_state(TradingState.HALTED)
        self._guard.mark_halted()


def _add_risk_guard(config: RuntimeConfig, engine: BacktestEngine) -> RiskGuard:
    """The runtime's risk guard on the engine, after the strategy (as ``build_node`` adds it), with its halt."""
    halt: BacktestHalt | None = None

    def on_breach(breach: Breach) -> None:
        assert halt is not None
        halt.on_breach(breach)

    guard = RiskGuard(RiskGuardConfig.from_spec(config.spec), on_breach=on_breach)
    halt = BacktestHalt(engine, guard, config.spec.halt_policy)
    # Breaches timed on the engine's clock (market time); its RiskEngine counts the order rates on it already.
    # The same doors as the runtime's: emulated and algorithm orders meet the gate before the RiskEngine.
    doors = front_doors(engine.kernel, engine.trader)
    guard.attach(engine.kernel.exec_engine, doors, market_clock=engine.kernel.clock, count_rates=False)
    engine.add_actor(guard)
    key = config.strategy.key

    def on_order_event(event: Any) -> None:  # what the runtime's reporter hands the guard: every fill
        if isinstance(event, OrderFilled):
            guard.on_fill(from_order_filled(event, key))

    engine.kernel.msgbus.subscribe("events.order.*", on_order_event)
    return guard


def _check_backtestable(config: RuntimeConfig) -> None:
    if config.spec.mode != Mode.PAPER:
        raise BacktestError(
            f"{config.strategy.key}: spec.mode is live: the backtest simulates the venue of a paper spec only "
            "(spec.mode: paper, spec.venue.adapter: sandbox with spec.venue.startingBalances)"
        )


def backtest_run_config(config: RuntimeConfig, catalog: StrategyCatalog, log_level: str = "ERROR") -> BacktestRunConfig:
    """The ``BacktestRunConfig`` equivalent of the paper node of ``config`` (see the module docstring)."""
    spec = config.spec
    _check_backtestable(config)
    loaded = load_strategy(spec.strategy, config.code_path)  # the same checks and errors as the node
    replay = spec.data.replay
    data_types = set(replay.data_types) if replay is not None else {ReplayDataType.BARS}
    window: dict[str, Any] = {
        "start_time": replay.start if replay else None,
        "end_time": replay.end if replay else None,
    }
    data: list[BacktestDataConfig] = []
    for instrument_id in spec.instruments:
        bar_types = [b for b in catalog.bar_types if b.startswith(f"{instrument_id}-")]
        if ReplayDataType.BARS in data_types and bar_types:
            data.append(
                BacktestDataConfig(
                    catalog_path=catalog.path,
                    data_cls="nautilus_trader.model.data:Bar",
                    instrument_id=instrument_id,
                    bar_types=bar_types,
                    **window,
                )
            )
        for kind, cls in ((ReplayDataType.QUOTES, "QuoteTick"), (ReplayDataType.TRADES, "TradeTick")):
            if kind in data_types:
                data.append(
                    BacktestDataConfig(
                        catalog_path=catalog.path,
                        data_cls=f"nautilus_trader.model.data:{cls}",
                        instrument_id=instrument_id,
                        **window,
                    )
                )
    if not data:
        raise BacktestError(
            f"the catalog at {catalog.path} holds no data to backtest for {', '.join(spec.instruments)}"
        )
    risk = spec.risk
    notional = (
        dict.fromkeys(spec.instruments, str(Decimal(str(risk.max_notional_per_order))))
        if risk.max_notional_per_order is not None
        else {}
    )
    engine = BacktestEngineConfig(
        trader_id=trader_id_for(config),
        strategies=[loaded.importable],
        exec_algorithms=list(loaded.importable_exec_algorithms),
        logging=LoggingConfig(log_level=nautilus_log_level(log_level), log_colors=False),
        # Rates are counted on the backtest clock, i.e. in market time: what the spec means.
        risk_engine=RiskEngineConfig(
            max_order_submit_rate=risk.max_order_submit_rate,
            max_order_modify_rate=risk.max_order_modify_rate,
            max_notional_per_order=notional,  # type: ignore[arg-type]
        ),
        run_analysis=False,
    )
    return BacktestRunConfig(
        engine=engine,
        venues=[paper_venue(spec).backtest_config()],
        data=data,
        raise_exception=True,
        dispose_on_completion=False,  # the engine's cache is read after the run
    )


class EngineProgress:
    """Reports how far a running ``BacktestEngine`` is, from a thread of its own, every ``every`` seconds:
    ``BacktestNode.run`` holds the caller until the backtest is over and has no progress hook. It reads
    the engine's iteration counter (a C integer) and, once the data is loaded, how many data points
    it has; it never touches the engine otherwise."""

    def __init__(self, engine: BacktestEngine, report: SampleProgress, every: float = 1.0) -> None:
        self._engine, self._report, self._every = engine, report, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="backtest-progress", daemon=True)

    def __enter__(self) -> EngineProgress:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        total = 0
        while not self._stop.wait(self._every):
            done = self._engine.iteration
            if not done:
                self._report("backtest: loading the catalog's data", 0, 0)
                continue
            total = total or len(self._engine.data)  # loaded before the first iteration; copied once
            self._report("backtest: events replayed", done, total)


def run_backtest(
    config: RuntimeConfig,
    *,
    catalog: StrategyCatalog | None = None,
    log_level: str = "ERROR",
    progress: SampleProgress | None = None,
) -> BacktestResult:
    """Backtest the spec of ``config`` over its catalog (writing ``data.sample`` first if the spec asks);
    ``progress`` hears how far writing the sample and the backtest are."""
    _check_backtestable(config)
    catalog = catalog if catalog is not None else prepare_catalog(config, progress=progress)
    run_config = backtest_run_config(config, catalog, log_level)
    node = BacktestNode(configs=[run_config])
    started = time.perf_counter()
    try:
        node.build()
        engine = node.get_engine(run_config.id)
        assert engine is not None
        _add_risk_guard(config, engine)
        if progress is None:
            results = node.run()
        else:
            with EngineProgress(engine, progress):
                results = node.run()
        wall = time.perf_counter() - started
        summary = summarize(engine.cache, engine.portfolio, list(config.spec.instruments), config.strategy.key)
        events = results[0].iterations if results else 0
    finally:
        node.dispose()
    return BacktestResult(
        summary=summary,
        events=events,
        wall_seconds=wall,
        sample_written=catalog.sample_written,
        sample_notice=catalog.sample_notice(config.spec.data.sample),
    )


def run_backtest_command(args: argparse.Namespace) -> int:
    """``livestrat backtest FILE [--workdir DIR] [--catalog DIR] [--fills-json PATH]``."""
    from livestrat.api.validation import InvalidManifest
    from strategy_runtime.local.config import halted_note, local_runtime_config, paper_only

    # The command prints the sample notice itself: the catalog's own warning would say it twice.
    logging.getLogger("livestrat.catalog").setLevel(logging.ERROR)
    add_strategy_directories(Path(args.file), getattr(args, "path", ()))
    try:
        config = local_runtime_config(
            Path(args.file), workdir=Path(args.workdir), catalog=Path(args.catalog) if args.catalog else None
        )
        if config.spec.mode != Mode.PAPER:
            print(f"livestrat backtest: {paper_only(args.file, config, 'livestrat backtest')}", file=sys.stderr)
            return 2
        progress = None if getattr(args, "quiet", False) else ThrottledProgress()
        result = run_backtest(config, log_level=getattr(args, "log_level", "ERROR"), progress=progress)
    except (InvalidManifest, BacktestError, *CONFIGURATION_ERRORS) as exc:
        print(f"livestrat backtest: {exc}", file=sys.stderr)
        return 2
    halted = halted_note(args.file, config, "livestrat backtest")
    if halted is not None:
        print(halted)
    if result.sample_notice is not None:
        print(result.sample_notice)
    print(
        f"backtest of {config.strategy.name} over {config.catalog_path}: "
        f"{figures.count(result.events)} events in {figures.seconds(result.wall_seconds)}"
    )
    for line in result.summary.lines():
        print(f"  {line}")
    print(f"  report: {report_command_line(args.file, args.workdir, catalog=args.catalog, backtest=True)}")
    fills_json = getattr(args, "fills_json", None)
    if fills_json:
        path = write_fills(fills_json, result.fills, as_csv=False)
        print(f"  fills written to {path}")
    return 0
