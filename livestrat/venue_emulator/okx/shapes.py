"""The JSON rows OKX answers, shaped as NautilusTrader 1.231's OKX adapter decodes them.

The authority is the adapter's serde structs (``crates/adapters/okx/src``): ``common/models.rs``
``OKXInstrument``; ``http/models.rs`` ``OKXAccount``/``OKXBalanceDetail``, ``OKXOrderHistory``,
``OKXTransactionDetail``, ``OKXFeeRate``; ``websocket/messages.rs`` ``OKXOrderMsg``. Their fields without
``#[serde(default)]`` must be present, so every row carries them all (OKX sends "" for what does not
apply). Numbers are strings, times are millisecond strings, as OKX sends them.

OKX's sign conventions: a fee is negative when charged (``fee: "-0.01"``), and the fee rates of
``/account/trade-fee`` are negative for a charge too.
"""

from __future__ import annotations

from decimal import Decimal

from livestrat.venue_emulator.accounts import Balance
from livestrat.venue_emulator.events import SymbolRules
from livestrat.venue_emulator.exchange import Order, Trade

# Exchange order status -> OKX ``state`` (an expired market order is canceled at OKX)
STATES = {
    "NEW": "live",
    "PARTIALLY_FILLED": "partially_filled",
    "FILLED": "filled",
    "CANCELED": "canceled",
    "EXPIRED": "canceled",
    "REJECTED": "canceled",
}
INST_ID_CODE_BASE = 10_000  # instIdCode: OKX's numeric instrument id, which WebSocket orders carry


def text(value: Decimal) -> str:
    """A decimal as OKX writes it: plain notation, no exponent, trailing zeros dropped."""
    return format(value.normalize(), "f") if value else "0"


def okx_ord_type(order: Order) -> str:
    if order.type == "MARKET":
        return "market"
    if order.type == "LIMIT_MAKER":
        return "post_only"
    return {"IOC": "ioc", "FOK": "fok"}.get(order.time_in_force, "limit")


def instrument(rules: SymbolRules, code: int) -> dict[str, object]:
    """``GET /api/v5/public/instruments`` row of a spot pair (OKX "Get instruments", instType SPOT)."""
    return {
        "instType": "SPOT",
        "instId": rules.symbol,
        "instIdCode": code,
        "uly": "",
        "instFamily": "",
        "baseCcy": rules.base_asset,
        "quoteCcy": rules.quote_asset,
        "settleCcy": "",
        "ctVal": "",
        "ctMult": "",
        "ctValCcy": "",
        "optType": "",
        "stk": "",
        "listTime": "1606468572000",
        "expTime": "",
        "lever": "",
        "tickSz": text(rules.tick_size),
        "lotSz": text(rules.step_size),
        "minSz": text(rules.min_qty),
        "ctType": "",
        "state": "live",
        "ruleType": "normal",
        "maxLmtSz": text(rules.max_qty),
        "maxMktSz": text(rules.max_qty),
        "maxLmtAmt": "20000000",
        "maxMktAmt": "1000000",
        "maxTwapSz": text(rules.max_qty),
        "maxIcebergSz": text(rules.max_qty),
        "maxTriggerSz": text(rules.max_qty),
        "maxStopSz": text(rules.max_qty),
    }


def fee_rate(rules: SymbolRules, now_ms: int) -> dict[str, object]:
    """``GET /api/v5/account/trade-fee`` (instType SPOT): the symbol's rates, negative as charges."""
    return {
        "level": "Lv1",
        "taker": text(-rules.taker_fee),
        "maker": text(-rules.maker_fee),
        "takerU": "",
        "makerU": "",
        "delivery": "",
        "exercise": "",
        "instType": "SPOT",
        "category": "1",
        "ts": str(now_ms),
    }


_DETAIL_ZEROES = (
    "borrowFroz",
    "crossLiab",
    "disEq",
    "eqUsd",
    "smtSyncEq",
    "spotCopyTradingEq",
    "fixedBal",
    "imr",
    "interest",
    "isoEq",
    "isoLiab",
    "isoUpl",
    "liab",
    "maxLoan",
    "mgnRatio",
    "mmr",
    "notionalLever",
    "rewardBal",
    "spotInUseAmt",
    "clSpotInUseAmt",
    "maxSpotInUseAmt",
    "spotIsoBal",
    "stgyEq",
    "twap",
    "upl",
    "uplLiab",
    "openAvgPx",
    "accAvgPx",
    "spotUpl",
    "spotUplRatio",
    "totalPnl",
    "totalPnlRatio",
)
_ACCOUNT_ZEROES = (
    "adjEq",
    "borrowFroz",
    "imr",
    "isoEq",
    "mgnRatio",
    "mmr",
    "notionalUsdForBorrow",
    "notionalUsdForFutures",
    "notionalUsdForOption",
    "notionalUsdForSwap",
    "notionalUsd",
    "ordFroz",
    "totalEq",
    "upl",
)


def account(balances: dict[str, Balance], now_ms: int) -> dict[str, object]:
    """``GET /api/v5/account/balance`` and the ``account`` channel: one detail row per currency
    (``cashBal`` = free + frozen, ``availBal`` free, ``frozenBal``/``ordFrozen`` what open orders hold)."""
    details = []
    for ccy, b in balances.items():
        total = b.free + b.locked
        details.append(
            dict.fromkeys(_DETAIL_ZEROES, "0")
            | {
                "ccy": ccy,
                "cashBal": text(total),
                "eq": text(total),
                "availBal": text(b.free),
                "availEq": text(b.free),
                "frozenBal": text(b.locked),
                "ordFrozen": text(b.locked),
                "spotBal": text(total),
                "uTime": str(now_ms),
            }
        )
    return dict.fromkeys(_ACCOUNT_ZEROES, "0") | {"details": details, "uTime": str(now_ms)}


def _order_common(order: Order, rules: SymbolRules) -> dict[str, object]:
    avg = order.cum_quote / order.executed_qty if order.executed_qty else Decimal(0)
    return {
        "instType": "SPOT",
        "instId": order.symbol,
        "ordId": str(order.order_id),
        "clOrdId": order.client_order_id,
        "tag": "",
        "ordType": okx_ord_type(order),
        "sz": text(order.orig_qty),
        "px": text(order.price) if order.type != "MARKET" else "",
        "side": order.side.lower(),
        "posSide": "net",
        "tdMode": "cash",
        "reduceOnly": "false",
        "tgtCcy": "base_ccy",
        "state": STATES[order.status],
        "avgPx": text(avg) if order.executed_qty else "",
        "accFillSz": text(order.executed_qty),
        "feeCcy": rules.quote_asset,
        "category": "normal",
        "cTime": str(order.time_ms),
        "uTime": str(order.update_ms or order.time_ms),
    }


def order_history(order: Order, rules: SymbolRules, fee: Decimal, last: Trade | None) -> dict[str, object]:
    """``/api/v5/trade/orders-pending`` and ``orders-history`` row (``OKXOrderHistory``); ``fee`` is
    what the order has paid so far (shown negative), ``last`` its latest fill."""
    return _order_common(order, rules) | {
        "uly": "",
        "fee": text(-fee),
        "fillSz": text(last.qty) if last else "0",
        "fillPx": text(last.price) if last else "",
        "tradeId": str(last.trade_id) if last else "",
        "fillTime": str(last.time_ms) if last else "",
    }


def order_message(
    order: Order, rules: SymbolRules, fee: Decimal, trade: Trade | None, amend: str = ""
) -> dict[str, object]:
    """A push of the ``orders`` channel (``OKXOrderMsg``): the order after one change; with ``trade``,
    the fill it made (``fillSz``, ``fillPx``, ``tradeId``, ``execType`` T/M, ``fillFee``), and ``fee``
    the order's cumulative fee (negative)."""
    return _order_common(order, rules) | {
        "ccy": "",
        "fee": text(-fee),
        "fillFee": text(-trade.commission) if trade else "0",
        "fillFeeCcy": rules.quote_asset if trade else "",
        "fillPx": text(trade.price) if trade else "",
        "fillSz": text(trade.qty) if trade else "0",
        "fillTime": str(trade.time_ms) if trade else "",
        "tradeId": str(trade.trade_id) if trade else "",
        "execType": ("M" if trade.is_maker else "T") if trade else "",
        "lever": "",
        "pnl": "0",
        "amendResult": amend,
        "reqId": "",
        "code": "0",
        "msg": "",
    }


def fill(trade: Trade, order: Order) -> dict[str, object]:
    """``GET /api/v5/trade/fills`` row (``OKXTransactionDetail``)."""
    return {
        "instType": "SPOT",
        "instId": trade.symbol,
        "tradeId": str(trade.trade_id),
        "ordId": str(trade.order_id),
        "clOrdId": order.client_order_id,
        "billId": str(trade.trade_id),
        "fillPx": text(trade.price),
        "fillSz": text(trade.qty),
        "side": trade.side.lower(),
        "execType": "M" if trade.is_maker else "T",
        "feeCcy": trade.commission_asset,
        "fee": text(-trade.commission),
        "ts": str(trade.time_ms),
    }
