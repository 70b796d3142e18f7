"""A stand-in for a live venue: the one part of a live strategy that cannot exist on these machines.

**What is mocked, and only that: the venue.** A live spec's adapter clients
(``strategy_runtime.node.live_venue``) are replaced by

- a market data client replaying a catalog the test wrote (the runtime's own
  ``ReplayDataClient``), as a venue's feed would stream prices;
- an execution client that simulates the venue's matching (the runtime's own sandbox client,
  with trade ids unique run after run, as a real venue gives: ``unique_trade_ids``) and answers
  NautilusTrader's start-up reconciliation with scripted reports: orders the venue filled while
  the runtime was down;
- the venue's clock, when a test sets one (``StandInVenue.clock_start``): the risk guard's day is
  the venue's (docs/runtime.md, "Risk guard"), so a test of the day's loss does not depend on
  the hour it runs at;
- a venue that fills, as the node disconnects, one order it still holds open, when a test asks for it
  (``fill_when_disconnecting``, with ``ignore_cancels``: an order the halt could not cancel, met by
  the market as the node leaves; its fill reaches the node during the halt's stop-node step);
- the venue's own record, when a test asks for one (``StandInVenue.journal``): a JSON line for
  every order it receives and every fill it reports, written as it happens (before the runtime
  sees the fill), so a test counts what reached the venue and what it filled, whatever became of
  the runtime afterwards (frozen, killed). The venue never delivers a fill twice and keeps no
  memory across processes: what a runtime did not record is not offered again, as with a live
  venue outside reconciliation.

Everything else is the real live runtime: a live-mode ``TradingNode`` with reconciliation on,
the engines' asynchronous event queues, the reporter, the risk guard, the ledger (PostgreSQL,
as live strategies require) and the halt. ``install(setattr)`` swaps the clients in (pytest's
``monkeypatch.setattr`` in a test process); run as a program,
``python -m tests.support.venue_standin CONFIG STANDIN`` is ``livestrat runtime --config CONFIG``
with the stand-in described by the JSON file ``STANDIN``, a process a test can SIGKILL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import FillReport, OrderStatusReport
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import AccountId, ClientOrderId, InstrumentId, TradeId, VenueOrderId
from nautilus_trader.model.objects import Money
from nautilus_trader.portfolio.base import PortfolioFacade

import strategy_runtime.node
import strategy_runtime.runtime
from livestrat.api.spec import LiveStrategySpec
from strategy_runtime.live.venues import LiveVenueClients
from strategy_runtime.paper.replay import ReplayDataClient, ReplayDataClientConfig, ReplayDataClientFactory
from strategy_runtime.paper.sandbox import SandboxExecClientConfig, SandboxExecutionClient
from strategy_runtime.risk.gate import EXEC_EVENTS_ENDPOINT
from strategy_runtime.risk.guard import RiskGuard
from tests.support.runtime_process import RuntimeProcess, strategy_config


class StandInExecClientConfig(SandboxExecClientConfig, frozen=True, kw_only=True):
    """The simulated venue, plus what it reports at reconciliation (``VenueOrder.to_json`` dicts)."""

    reconcile: list[dict[str, Any]] = []  # noqa: RUF012  (msgspec copies defaults)
    ignore_cancels: bool = False  # a venue that never acts on a cancel (unresponsive, or its API down)
    journal: str | None = None  # a JSON line per order received (see VenueJournal)
    # As the node disconnects, the venue fills one order it still holds open (one the halt could not cancel, met by
    # the market as the node leaves): its fill reaches the node during the halt's stop-node step.
    fill_when_disconnecting: bool = False


class StandInExecClient(SandboxExecutionClient):
    """The simulated venue; at reconciliation it reports the scripted orders and their trades."""

    def __init__(self, *args: Any, config: StandInExecClientConfig, **kwargs: Any) -> None:
        super().__init__(*args, config=config, **kwargs)
        self._set_account_id(AccountId(f"{config.venue}-001"))  # as the simulated exchange books it
        self._reconcile = [VenueOrder.from_json(o) for o in config.reconcile]
        self._ignore_cancels = config.ignore_cancels
        self._journal = VenueJournal(config.journal) if config.journal else None
        self._fill_when_disconnecting = config.fill_when_disconnecting

    def disconnect(self) -> None:
        if self._fill_when_disconnecting:
            self._fill_when_disconnecting = False
            orders = self._cache.orders_open(venue=self.venue)
            if orders:
                self._fill_whole(orders[0])
        super().disconnect()

    def _fill_whole(self, order: Any) -> None:
        instrument = self._cache.instrument(order.instrument_id)
        self.generate_order_filled(
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            venue_position_id=None,
            trade_id=TradeId(f"LATE-{UUID4().value[:8]}"),  # with the prefix unique_trade_ids adds, under 36
            order_side=order.side,
            order_type=order.order_type,
            last_qty=order.leaves_qty,
            last_px=order.price,
            quote_currency=instrument.quote_currency,
            commission=Money(0, instrument.quote_currency),
            liquidity_side=LiquiditySide.MAKER,
            ts_event=self._clock.timestamp_ns(),
        )

    def submit_order(self, command: Any) -> None:
        if self._journal is not None:
            self._journal.write(order=command.order.client_order_id.value)
        super().submit_order(command)

    def submit_order_list(self, command: Any) -> None:
        if self._journal is not None:
            for order in command.order_list.orders:
                self._journal.write(order=order.client_order_id.value)
        super().submit_order_list(command)

    def cancel_order(self, command: Any) -> None:
        if not self._ignore_cancels:
            super().cancel_order(command)

    def cancel_all_orders(self, command: Any) -> None:
        if not self._ignore_cancels:
            super().cancel_all_orders(command)

    async def generate_order_status_reports(self, command: Any) -> list[OrderStatusReport]:
        return [self._status_report(order) for order in self._reconcile]

    async def generate_fill_reports(self, command: Any) -> list[FillReport]:
        return [self._fill_report(order, trade) for order in self._reconcile for trade in order.trades]

    def _status_report(self, order: VenueOrder) -> OrderStatusReport:
        instrument = self._cache.instrument(InstrumentId.from_str(order.instrument_id))
        now = self._clock.timestamp_ns()
        return OrderStatusReport(
            account_id=self.account_id,
            instrument_id=instrument.id,
            venue_order_id=VenueOrderId(order.venue_order_id),
            client_order_id=ClientOrderId(order.client_order_id),
            order_side=OrderSide[order.side],
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            order_status=OrderStatus.FILLED,
            quantity=instrument.make_qty(Decimal(order.quantity)),
            filled_qty=instrument.make_qty(Decimal(order.quantity)),
            price=instrument.make_price(Decimal(order.price)),
            avg_px=Decimal(order.price),
            report_id=UUID4(),
            ts_accepted=order.ts_event,
            ts_last=order.ts_event,
            ts_init=now,
        )

    def _fill_report(self, order: VenueOrder, trade: VenueTrade) -> FillReport:
        instrument = self._cache.instrument(InstrumentId.from_str(order.instrument_id))
        return FillReport(
            account_id=self.account_id,
            instrument_id=instrument.id,
            venue_order_id=VenueOrderId(order.venue_order_id),
            client_order_id=ClientOrderId(order.client_order_id),
            trade_id=TradeId(trade.trade_id),
            order_side=OrderSide[order.side],
            last_qty=instrument.make_qty(Decimal(trade.quantity)),
            last_px=instrument.make_price(Decimal(order.price)),
            commission=Money(Decimal(trade.commission), instrument.quote_currency),
            liquidity_side=LiquiditySide.MAKER,
            report_id=UUID4(),
            ts_event=order.ts_event,
            ts_init=self._clock.timestamp_ns(),
        )


class SandboxLiveExecClientFactory(LiveExecClientFactory):
    """The stand-in's factory; the name is NautilusTrader's condition for handing it the portfolio."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: StandInExecClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> StandInExecClient:
        return StandInExecClient(loop=loop, portfolio=portfolio, msgbus=msgbus, cache=cache, clock=clock, config=config)


class VenueJournal:
    """The venue's own record, one JSON line per order received or fill reported, written at once
    (a process frozen or killed a moment later has already told the kernel)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, **row: Any) -> None:
        with open(self.path, "a") as journal:
            journal.write(json.dumps(row) + "\n")

    @staticmethod
    def read(path: str | Path) -> tuple[list[str], list[str]]:
        """(client order ids received, trade ids filled), in order; nothing if the file does not exist."""
        if not Path(path).exists():
            return [], []
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        return [r["order"] for r in rows if "order" in r], [r["fill"] for r in rows if "fill" in r]


@dataclass(frozen=True)
class VenueTrade:
    trade_id: str
    quantity: str
    commission: str = "0"


@dataclass(frozen=True)
class VenueOrder:
    """A limit order the venue filled while the runtime was away (``trades`` empty: reported without them)."""

    venue_order_id: str
    client_order_id: str
    instrument_id: str
    side: str
    quantity: str
    price: str
    ts_event: int
    trades: tuple[VenueTrade, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "trades": [t.__dict__ for t in self.trades]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VenueOrder:
        return cls(**{**data, "trades": tuple(VenueTrade(**t) for t in data.get("trades", ()))})


@dataclass(frozen=True)
class StandInVenue:
    """Where the stand-in's prices come from (``catalog``) and what it reports at start (``reconcile``)."""

    catalog: str
    reconcile: tuple[VenueOrder, ...] = ()
    speed: float = 0.0
    starting_balances: tuple[str, ...] = ("1000000 USDT",)
    account_type: str = "MARGIN"
    ignore_cancels: bool = False
    fill_when_disconnecting: bool = False  # see StandInExecClientConfig
    # The venue's time when the process starts (RFC 3339), running at the wall clock's pace; None: the wall clock.
    clock_start: str | None = None
    journal: str | None = None  # the venue's record of orders received and fills reported (VenueJournal)

    def to_json(self) -> str:
        return json.dumps(
            {
                "catalog": self.catalog,
                "reconcile": [o.to_json() for o in self.reconcile],
                "speed": self.speed,
                "starting_balances": list(self.starting_balances),
                "account_type": self.account_type,
                "ignore_cancels": self.ignore_cancels,
                "fill_when_disconnecting": self.fill_when_disconnecting,
                "clock_start": self.clock_start,
                "journal": self.journal,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StandInVenue:
        data = json.loads(text)
        return cls(
            catalog=data["catalog"],
            reconcile=tuple(VenueOrder.from_json(o) for o in data["reconcile"]),
            speed=data["speed"],
            starting_balances=tuple(data["starting_balances"]),
            account_type=data["account_type"],
            ignore_cancels=data["ignore_cancels"],
            fill_when_disconnecting=data.get("fill_when_disconnecting", False),
            clock_start=data["clock_start"],
            journal=data.get("journal"),
        )

    def clients(self, spec: LiveStrategySpec) -> LiveVenueClients:
        name = InstrumentId.from_str(spec.instruments[0]).venue.value
        bar_types = [f"{i}-1-MINUTE-LAST-EXTERNAL" for i in spec.instruments]
        return LiveVenueClients(
            name=name,
            venue=name,
            account_type=str(spec.venue.account_type or "spot"),
            nautilus_account_type=self.account_type,
            data_config=ReplayDataClientConfig(
                catalog_path=self.catalog,
                instrument_ids=list(spec.instruments),
                bar_types=bar_types,
                speed=self.speed,
                lockstep=True,
            ),
            exec_config=StandInExecClientConfig(
                venue=name,
                oms_type="NETTING",
                account_type=self.account_type,
                starting_balances=list(self.starting_balances),
                bar_execution=True,
                use_random_ids=True,  # a venue's trade ids are unique, run after run
                reconcile=[o.to_json() for o in self.reconcile],
                ignore_cancels=self.ignore_cancels,
                fill_when_disconnecting=self.fill_when_disconnecting,
                journal=self.journal,
            ),
            data_factory=ReplayDataClientFactory,
            exec_factory=SandboxLiveExecClientFactory,
        )

    def install(self, setattr_: Callable[[Any, str, Any], None]) -> None:
        """Put the stand-in in place of the live adapter (``setattr_``: ``monkeypatch.setattr`` or ``setattr``)."""
        real_build_node = strategy_runtime.node.build_node

        def live_venue(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
            return self.clients(spec)

        def build_node(*args: Any, **kwargs: Any) -> Any:
            node = real_build_node(*args, **kwargs)
            for client in node.kernel.data_engine._clients.values():
                if isinstance(client, ReplayDataClient):
                    client.attach_kernel(node.kernel)  # the replay waits for the trader to run
            # The stand-in is the venue: its fills pass it before they reach the node's endpoint handler.
            node.exec_events_handler = unique_trade_ids(
                node.kernel, node.exec_events_handler, VenueJournal(self.journal) if self.journal else None
            )
            return node

        setattr_(strategy_runtime.node, "live_venue", live_venue)
        setattr_(strategy_runtime.runtime, "build_node", build_node)
        if self.clock_start is not None:
            setattr_(strategy_runtime.runtime, "RiskGuard", functools.partial(RiskGuard, now=self.clock()))

    def clock(self) -> Callable[[], datetime]:
        """The venue's clock: ``clock_start`` now, then the wall clock's pace."""
        assert self.clock_start is not None
        start, started = datetime.fromisoformat(self.clock_start), time.monotonic()
        return lambda: start + timedelta(seconds=time.monotonic() - started)


def unique_trade_ids(kernel: Any, handler: Any, journal: VenueJournal | None = None) -> Any:
    """Make the simulated venue's trade ids unique run after run, as a real venue's are.

    NautilusTrader 1.231's simulated exchange derives every trade id from (venue, instrument
    number, the data point's timestamp) whatever ``use_random_ids`` says, so two runs over the
    same prices report the same ids, which a real venue never does (and the ledger would take
    the second run's fills for duplicates of the first's). Each fill the stand-in reports is
    re-issued with a per-process prefix before the execution engine sees it, and written to the
    venue's ``journal`` first, when there is one. ``handler``: what the execution engine's event endpoint
    calls now; the function that stands in front of it is returned (and registered there).
    """
    run = UUID4().value[:8]

    def process(event: Any) -> None:
        if isinstance(event, OrderFilled) and not event.trade_id.value.startswith(run):
            fields = OrderFilled.to_dict(event)
            fields["trade_id"] = f"{run}-{event.trade_id.value}"  # 8 + 1 + 22 characters: under TradeId's 36
            event = OrderFilled.from_dict(fields)
            if journal is not None:
                journal.write(fill=event.trade_id.value, client_order_id=event.client_order_id.value)
        handler(event)

    kernel.msgbus.deregister(EXEC_EVENTS_ENDPOINT, handler)
    kernel.msgbus.register(EXEC_EVENTS_ENDPOINT, process)
    return process


def standin_command(config_path: Path, venue: StandInVenue) -> list[str]:
    """The command line of a ``livestrat runtime`` process whose venue is ``venue`` (see the module docstring)."""
    standin = config_path.with_name("standin.json")
    standin.write_text(venue.to_json())
    return [sys.executable, "-m", "tests.support.venue_standin", str(config_path), str(standin)]


def main(argv: list[str]) -> int:
    config_path, standin_path = argv
    StandInVenue.from_json(Path(standin_path).read_text()).install(setattr)
    from livestrat.cli import main as livestrat

    return livestrat(["runtime", "--config", config_path])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def live_spec(strategy: Mapping[str, Any], instrument: str = "BTCUSDT.BINANCE", **overrides: Any) -> dict[str, Any]:
    """A live spec on Binance (its clients replaced by the stand-in), with the limits live mode requires."""
    spec: dict[str, Any] = {
        "mode": "live",
        "strategy": dict(strategy),
        "venue": {"adapter": "binance", "testnet": True, "credentialsSecret": {"name": "venue-keys"}},
        "instruments": [instrument],
        "data": {"catalog": {"emptyDir": {}}},
        "risk": {"maxDailyLoss": 1_000_000, "maxPosition": 1_000, "maxNotionalPerOrder": 10_000_000},
        "ledger": {"dsnSecret": {"name": "ledger-dsn"}},
        "pod": {"terminationGracePeriodSeconds": 15},
    }
    spec.update(overrides)
    return spec


def start_live_runtime(
    directory: Path,
    catalog: Path,
    strategy: Mapping[str, Any],
    *,
    dsn: str,
    name: str,
    speed: float,
    tag: str,
    journal: Path | None = None,
) -> RuntimeProcess:
    """A live runtime process of ``desk/NAME`` in ``directory`` (its own pod: state, ports), on the stand-in venue.

    The venue keeps its journal in ``journal`` (default ``directory/venue.jsonl``); ``tag`` names the
    process's output files.
    """
    config, path = strategy_config(directory, live_spec(strategy), name=name, catalog=catalog, ledger_kind="postgresql")
    venue = StandInVenue(str(catalog), speed=speed, journal=str(journal or directory / "venue.jsonl"))
    return RuntimeProcess.start(config, path, ledger_dsn=dsn, command=standin_command(path, venue), tag=tag)
