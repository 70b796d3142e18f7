"""Venue accounts: which account a live spec trades, and whether NautilusTrader nets positions on it.

Shared by the runtime (``strategy_runtime.live.venues`` books the default account type) and the
operator (``strategy_operator.decide.claims``: one strategy per NETTING account and instrument).

**Order management (OMS) type.** NautilusTrader's execution client of each adapter declares the
venue's OMS type: NETTING (one position per instrument) or HEDGING (several positions per
instrument, by position id). In NautilusTrader 1.231 only Binance's futures clients (``usdtFutures``,
``coinFutures``) declare HEDGING; every other adapter and account type here is NETTING
(``tests/runtime/test_accounts.py`` reads it from the installed clients). On a NETTING account two
strategies trading one instrument share the venue's one position: each node's reconciliation takes
the other's fills for its own.

**What identifies an account** without reading a Secret: the adapter, the market (account type) and
the environment (``testnet``), and the credentials Secret's name in the strategy's namespace; for
Interactive Brokers, whose login is the gateway's, the ``options.account_id`` it trades. Two Secrets
holding the same API key are two accounts here: the operator never reads a Secret's content.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from livestrat.api.spec import AccountType, Adapter, Mode


class OmsType(StrEnum):
    NETTING = "NETTING"
    HEDGING = "HEDGING"


# spec.py documents these defaults (Venue.account_type); keep them in step.
DEFAULT_ACCOUNT_TYPES: dict[str, AccountType] = {
    Adapter.BINANCE: AccountType.SPOT,
    Adapter.BYBIT: AccountType.LINEAR,
    Adapter.OKX: AccountType.SWAP,
    Adapter.DERIBIT: AccountType.FUTURE,
    Adapter.INTERACTIVE_BROKERS: AccountType.MARGIN,
}

# (adapter, account type) whose NautilusTrader 1.231 execution client declares OmsType.HEDGING; the rest nets.
HEDGING_ACCOUNTS: frozenset[tuple[str, str]] = frozenset(
    {(Adapter.BINANCE, AccountType.USDT_FUTURES), (Adapter.BINANCE, AccountType.COIN_FUTURES)}
)


def oms_type(adapter: str, account_type: str) -> OmsType:
    return OmsType.HEDGING if (adapter, account_type) in HEDGING_ACCOUNTS else OmsType.NETTING


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def netting_account(spec: Mapping[str, Any]) -> str | None:
    """The NETTING venue account a spec (as stored: camelCase, possibly malformed) trades live, as one key;
    None for paper (its own simulated account), a HEDGING account, or a spec that does not say which."""
    if not isinstance(spec, Mapping) or spec.get("mode") != Mode.LIVE:
        return None
    venue = spec.get("venue")
    if not isinstance(venue, Mapping):
        return None
    adapter = _text(venue.get("adapter"))
    if adapter not in DEFAULT_ACCOUNT_TYPES:
        return None
    account_type = _text(venue.get("accountType")) or str(DEFAULT_ACCOUNT_TYPES[adapter])
    if oms_type(adapter, account_type) != OmsType.NETTING:
        return None
    environment = "testnet" if venue.get("testnet") is True else "live"
    if adapter == Adapter.INTERACTIVE_BROKERS:
        options = venue.get("options")
        who = _text(options.get("account_id")) if isinstance(options, Mapping) else None
        login = f"account {who}" if who else None
    else:
        secret = venue.get("credentialsSecret")
        name = _text(secret.get("name")) if isinstance(secret, Mapping) else None
        login = f"Secret {name}" if name else None
    if login is None:
        return None
    return f"{adapter} {account_type} ({environment}), {login}"


def instruments_of(spec: Mapping[str, Any]) -> tuple[str, ...]:
    found = spec.get("instruments") if isinstance(spec, Mapping) else None
    return tuple(sorted({i for i in found if isinstance(i, str)})) if isinstance(found, list) else ()
