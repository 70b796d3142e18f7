"""What the ledger stores: fills, risk halts and risk baselines, as plain records (no NautilusTrader objects).

The reporting component turns each NautilusTrader ``OrderFilled`` into a ``FillRecord``
(``from_order_filled``); everything downstream (the ledger, the PnL recomputation, the risk
limits, tests) works on these plain records, so it runs and is tested without a node.
``HaltRecord`` and ``RiskBaseline`` are what the risk guard keeps across restarts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nautilus_trader.execution.reports import FillReport
    from nautilus_trader.model.events import OrderFilled


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution of one order at the venue.

    The ledger's idempotency key is ``(strategy_key, instrument_id, trade_id)``: venues such
    as Binance and OKX number trades per instrument, so the trade id alone may repeat across
    the instruments a strategy trades.
    """

    strategy_key: str
    trade_id: str
    client_order_id: str
    venue_order_id: str
    instrument_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    commission_currency: str
    ts_event: int
    ts_init: int
    position_id: str | None = None
    account_id: str | None = None
    quote_currency: str | None = None
    # The market price the order gate saw for the instrument when it sent the fill's order on (the mid, else the
    # last trade or bar): what slippage is measured against. None: the gate had no price, the order was not sent
    # by this runtime (one a venue reported at reconciliation), or the fill was stored before migration 6.
    arrival_price: Decimal | None = None

    def __post_init__(self) -> None:
        # A record the database would reject would block every fill queued behind it
        # (the writer retries a failed batch until it commits), so reject it here instead.
        for name in ("strategy_key", "trade_id", "client_order_id", "venue_order_id", "instrument_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "\x00" in value:
                raise ValueError(f"FillRecord.{name} must be a non-empty string, got {value!r}")
        for name in ("quantity", "price", "commission"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                raise TypeError(
                    f"FillRecord.{name} must be a Decimal (exact), got {type(value).__name__} {value!r}; "
                    "convert with Quantity.as_decimal() / Price.as_decimal(), never through float"
                )
            if not value.is_finite():
                raise ValueError(f"FillRecord.{name} must be finite, got {value!r}")
        if self.arrival_price is not None and not (
            isinstance(self.arrival_price, Decimal) and self.arrival_price.is_finite()
        ):
            raise TypeError(f"FillRecord.arrival_price must be a finite Decimal or None, got {self.arrival_price!r}")
        if self.quantity <= 0:
            raise ValueError(f"FillRecord.quantity must be positive, got {self.quantity}")
        for name in ("ts_event", "ts_init"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise ValueError(f"FillRecord.{name} must be int nanoseconds since the epoch, got {value!r}")
        if not isinstance(self.side, Side):
            object.__setattr__(self, "side", Side(self.side))

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else -self.quantity

    def as_row(self) -> tuple[Any, ...]:
        """The values in ``COLUMNS`` order, as the backends bind them: Decimals as their exact text."""
        return (
            self.strategy_key,
            self.trade_id,
            self.client_order_id,
            self.venue_order_id,
            self.instrument_id,
            self.side.value,
            str(self.quantity),
            str(self.price),
            str(self.commission),
            self.commission_currency,
            self.ts_event,
            self.ts_init,
            self.position_id,
            self.account_id,
            self.quote_currency,
            None if self.arrival_price is None else str(self.arrival_price),
        )


# Column names of the fills table, in FillRecord field order (so FillRecord(*row) reads a row back).
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FillRecord))
DECIMAL_COLUMNS = frozenset({"quantity", "price", "commission", "arrival_price"})
INTEGER_COLUMNS = frozenset({"ts_event", "ts_init"})


def fill_from_columns(values: Mapping[str, Any]) -> FillRecord:
    """A fill from its column values with decimals as text (an SQLite row, a spool line, an export): decimals
    parsed exactly, NULL kept, and a column the values lack (written before it existed) read as NULL."""
    return FillRecord(
        **{c: Decimal(v) if c in DECIMAL_COLUMNS and v is not None else v for c in COLUMNS for v in (values.get(c),)}
    )


def strategy_file_stem(strategy_key: str) -> str:
    """A file name for one strategy's own files (its fence lock, its spool): readable, and a hash for uniqueness."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", strategy_key)[:80]
    digest = hashlib.sha256(strategy_key.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


# A paper runtime records each start's fills as a run of their own: ``namespace/name@run-EPOCH``.
RUN_MARK = "@run-"


def run_key(strategy_key: str, epoch: int) -> str:
    """The ledger key of one run of a paper strategy: its fills, apart from every other start's.

    A paper start is a fresh simulated account replaying from the first bar, so its fills are not
    the same trades as an earlier start's, even where the trade ids repeat (or differ, with random
    ids); ``epoch`` is the fencing token this start took (one per start, rising), so the runs of a
    strategy sort in the order they ran. A LiveStrategy name has no ``@``: the mark is unambiguous.
    """
    return f"{strategy_key}{RUN_MARK}{epoch}"


def strategy_of(ledger_key: str) -> str:
    """The strategy key (``namespace/name``) a ledger key belongs to: itself, or the strategy of a run."""
    return ledger_key.split(RUN_MARK, 1)[0]


# Trade ids of fills NautilusTrader inferred at reconciliation (a venue reported an order filled
# further than the fills it reported): see ``inferred_trade_id``.
INFERRED_TRADE_PREFIX = "INFERRED-"


def inferred_trade_id(venue_order_id: str, filled_quantity: Decimal) -> str:
    """The ledger's trade id for a fill NautilusTrader inferred from an order status report.

    NautilusTrader gives such a fill a random trade id (a fresh UUID every time it reconciles),
    which would defeat the ledger's deduplication: each restart would store the same venue fill
    again. This id is deterministic instead: the venue order and the cumulative quantity the
    report says it reached, so the same report always yields the same id, and is marked
    (``INFERRED-``) so that a human can tell it from a venue's own trade id.
    """
    return f"{INFERRED_TRADE_PREFIX}{venue_order_id}-{filled_quantity.normalize():f}"


def from_order_filled(
    event: OrderFilled, strategy_key: str, *, trade_id: str | None = None, arrival_price: Decimal | None = None
) -> FillRecord:
    """The ledger record of a NautilusTrader ``OrderFilled`` event, for the LiveStrategy ``strategy_key``.

    ``trade_id`` replaces the event's (an inferred fill's, see ``inferred_trade_id``); ``arrival_price``: what
    the order gate saw when it sent the order on (``strategy_runtime.arrivals``).
    """
    return FillRecord(
        strategy_key=strategy_key,
        trade_id=trade_id or event.trade_id.value,
        client_order_id=event.client_order_id.value,
        venue_order_id=event.venue_order_id.value,
        instrument_id=event.instrument_id.value,
        side=Side.BUY if event.is_buy else Side.SELL,
        quantity=event.last_qty.as_decimal(),
        price=event.last_px.as_decimal(),
        commission=event.commission.as_decimal(),
        commission_currency=event.commission.currency.code,
        ts_event=event.ts_event,
        ts_init=event.ts_init,
        position_id=event.position_id.value if event.position_id is not None else None,
        account_id=event.account_id.value if event.account_id is not None else None,
        quote_currency=event.currency.code,
        arrival_price=arrival_price,
    )


def from_fill_report(
    report: FillReport,
    strategy_key: str,
    *,
    client_order_id: str,
    position_id: str | None,
    quote_currency: str | None,
) -> FillRecord:
    """The ledger record of a venue's trade as a NautilusTrader reconciliation ``FillReport`` carries it (no
    ``OrderFilled``: the engine did not apply it); the order's ids and position are the node's, given."""
    from nautilus_trader.model.enums import OrderSide  # here: the ledger's readers import this module without it

    return FillRecord(
        strategy_key=strategy_key,
        trade_id=report.trade_id.value,
        client_order_id=client_order_id,
        venue_order_id=report.venue_order_id.value,
        instrument_id=report.instrument_id.value,
        side=Side.BUY if report.order_side == OrderSide.BUY else Side.SELL,
        quantity=report.last_qty.as_decimal(),
        price=report.last_px.as_decimal(),
        commission=report.commission.as_decimal(),
        commission_currency=report.commission.currency.code,
        ts_event=report.ts_event,
        ts_init=report.ts_init,
        position_id=position_id,
        account_id=report.account_id.value if report.account_id is not None else None,
        quote_currency=quote_currency,
    )


@dataclass(frozen=True)
class HaltRecord:
    """A risk halt of a strategy, as the ledger keeps it until someone acknowledges it.

    ``acknowledgement`` is the risk acknowledgement that was in force when the halt was
    recorded: only a different one clears it (a restart with the same configuration does not).
    """

    breached_limit: str
    reason: str
    breached_at: datetime
    owner: str
    acknowledgement: str | None = None
    breached_at_market: datetime | None = None  # market time of the event that broke the limit (migration 5)


@dataclass(frozen=True)
class RiskBaseline:
    """What the risk guard cannot derive from the fills alone, kept so that its limits hold across restarts.

    Both in "total PnL" (realized from every fill the ledger holds, plus the unrealized PnL of
    the open positions), per currency: ``day_open`` at the start of the UTC ``day``, and the
    highest ``peak`` it reached. See docs/runtime.md, "Risk guard".
    """

    day: date
    day_open: Mapping[str, float]
    peak: Mapping[str, float]
