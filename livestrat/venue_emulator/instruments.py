"""The catalog's instruments as Binance's exchangeInfo describes them: one ``SymbolRules`` per instrument.

A ``CurrencyPair`` of venue BINANCE is a spot symbol (BTCUSDT.BINANCE -> ``spot`` BTCUSDT); a
``CryptoPerpetual`` is a USD-M perpetual (BTCUSDT-PERP.BINANCE -> ``usdm`` BTCUSDT, the symbol
NautilusTrader's adapter maps back to ``-PERP``). The filters come from the instrument: tick and
step from its increments, LOT_SIZE's bounds from its min/max quantity, the notional minimum from
its ``min_notional``, PRICE_FILTER's bounds from its min/max price, fees from its maker/taker fee.
Where the instrument leaves a value open, the rules use Binance's own value for BTCUSDT
(``DEFAULTS``), so exchangeInfo always carries every filter the adapter reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair, Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.venue_emulator.events import Product, SymbolRules

VENUE = "BINANCE"

# Binance's BTCUSDT values, for what an instrument leaves open: LOT_SIZE maxQty (spot 9000, USD-M 1000),
# the notional minimum (spot NOTIONAL 5 USDT, USD-M MIN_NOTIONAL 5 USDT for most symbols) and spot's
# NOTIONAL maxNotional.
DEFAULTS: dict[Product, dict[str, Decimal]] = {
    "spot": {"max_qty": Decimal(9000), "min_notional": Decimal(5), "max_notional": Decimal(9_000_000)},
    "usdm": {"max_qty": Decimal(1000), "min_notional": Decimal(5)},
}


class InstrumentError(ValueError):
    """An instrument the emulator cannot list (wrong venue or kind, or missing from the catalog)."""


def _product(instrument: Instrument, venue: str = VENUE) -> Product:
    if instrument.id.venue.value != venue:
        raise InstrumentError(
            f"instrument {instrument.id} is not a {venue} instrument: this venue emulator speaks {venue}'s protocol"
        )
    if isinstance(instrument, CurrencyPair):
        return "spot"
    if venue != VENUE:  # the OKX emulator lists spot pairs only (its symbol is the pair's raw symbol, BTC-USDT)
        raise InstrumentError(
            f"instrument {instrument.id} is a {type(instrument).__name__}: {venue} lists spot pairs only"
        )
    if isinstance(instrument, CryptoPerpetual) and not instrument.is_inverse:
        return "usdm"
    raise InstrumentError(
        f"instrument {instrument.id} is a {type(instrument).__name__}: the venue emulator lists spot pairs "
        "(CurrencyPair) and USD-M perpetuals (CryptoPerpetual, linear) only"
    )


def symbol_rules(instrument: Instrument, venue: str = VENUE) -> SymbolRules:
    """The exchangeInfo entry (and the filters the exchange enforces) for one catalog instrument of ``venue``."""
    product = _product(instrument, venue)
    defaults = DEFAULTS[product]
    step = instrument.size_increment.as_decimal()
    max_notional = instrument.max_notional.as_decimal() if instrument.max_notional is not None else None
    if product == "spot" and max_notional is None:
        max_notional = defaults["max_notional"]
    return SymbolRules(
        symbol=instrument.raw_symbol.value,
        product=product,
        instrument_id=str(instrument.id),
        base_asset=instrument.base_currency.code,
        quote_asset=instrument.quote_currency.code,
        price_precision=instrument.price_precision,
        qty_precision=instrument.size_precision,
        tick_size=instrument.price_increment.as_decimal(),
        step_size=step,
        min_qty=instrument.min_quantity.as_decimal() if instrument.min_quantity is not None else step,
        max_qty=instrument.max_quantity.as_decimal() if instrument.max_quantity is not None else defaults["max_qty"],
        min_notional=(
            instrument.min_notional.as_decimal() if instrument.min_notional is not None else defaults["min_notional"]
        ),
        maker_fee=instrument.maker_fee,
        taker_fee=instrument.taker_fee,
        min_price=instrument.min_price.as_decimal() if instrument.min_price is not None else Decimal(0),
        max_price=instrument.max_price.as_decimal() if instrument.max_price is not None else Decimal(0),
        max_notional=max_notional,
    )


def catalog_rules(catalog_path: str | Path, instrument_ids: Sequence[str], venue: str = VENUE) -> list[SymbolRules]:
    """The rules of each instrument (of ``venue``: BINANCE, or OKX for the OKX emulator), in the order given,
    read from the catalog at ``catalog_path``."""
    catalog = ParquetDataCatalog(str(catalog_path))
    try:
        held = {str(i.id): i for i in catalog.instruments(instrument_ids=list(instrument_ids))}
    except FileNotFoundError:
        held = {}
    missing = [i for i in instrument_ids if i not in held]
    if missing:
        raise InstrumentError(f"instrument(s) {', '.join(missing)} not found in the catalog at {catalog_path}")
    rules = [symbol_rules(held[i], venue) for i in instrument_ids]
    seen: set[tuple[str, str]] = set()
    for r in rules:
        if (r.product, r.symbol) in seen:
            raise InstrumentError(f"two instruments are {r.product} symbol {r.symbol}: give each one once")
        seen.add((r.product, r.symbol))
    return rules


# Binance spot renders every price and quantity with 8 decimals ("0.01000000"); USD-M renders a price
# with the symbol's pricePrecision and a quantity with its quantityPrecision ("0.10", "0.001"), as the
# exchangeInfo examples show. NautilusTrader's providers take the precision from these strings: a spot
# pair loaded from Binance has precision 8, as it would from the real venue.
SPOT_DECIMALS = 8


def _fixed(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def price_text(rules: SymbolRules, value: Decimal) -> str:
    """A price as Binance writes it for this symbol."""
    return _fixed(value, SPOT_DECIMALS if rules.product == "spot" else rules.price_precision)


def qty_text(rules: SymbolRules, value: Decimal) -> str:
    """A quantity as Binance writes it for this symbol."""
    return _fixed(value, SPOT_DECIMALS if rules.product == "spot" else rules.qty_precision)
