"""Which venue accounts net, as docs/operator.md ("Which accounts net") and livestrat.api.accounts say, against
NautilusTrader's own execution clients; and the default account types against the accounts each adapter offers.

The operator claims every live account whatever its OMS type (``livestrat.api.accounts.claimed_account``); the OMS
type still decides what two strategies on one account and instrument would share (one position on NETTING), which
the docs explain."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from nautilus_trader.adapters.binance import BinanceAccountType

from livestrat.api.accounts import DEFAULT_ACCOUNT_TYPES
from livestrat.api.spec import ACCOUNT_TYPES, AccountType, Adapter

# What the docs say: only Binance's futures accounts are HEDGING in NautilusTrader 1.231; every other one nets.
HEDGING_ACCOUNTS = {(Adapter.BINANCE, AccountType.USDT_FUTURES), (Adapter.BINANCE, AccountType.COIN_FUTURES)}

# The module of each adapter's execution client, whose constructor passes the venue's oms_type to NautilusTrader.
EXECUTION_MODULES = {
    Adapter.BINANCE: "nautilus_trader.adapters.binance.execution",
    Adapter.BYBIT: "nautilus_trader.adapters.bybit.execution",
    Adapter.OKX: "nautilus_trader.adapters.okx.execution",
    Adapter.DERIBIT: "nautilus_trader.adapters.deribit.execution",
    Adapter.INTERACTIVE_BROKERS: "nautilus_trader.adapters.interactive_brokers.execution",
}


def declared_oms(adapter: Adapter) -> str:
    """The ``oms_type=`` argument the adapter's execution client gives its base class, as written in the installed
    NautilusTrader (read, not imported: Interactive Brokers' client needs an extra)."""
    spec = importlib.util.find_spec(EXECUTION_MODULES[adapter])
    assert spec is not None and spec.origin is not None
    [found] = set(re.findall(r"oms_type=(OmsType\.\w+[^,\n]*)", Path(spec.origin).read_text()))
    return found.strip()


@pytest.mark.parametrize("adapter", list(EXECUTION_MODULES))
def test_the_docs_say_which_accounts_net_as_nautilus_traders_execution_clients_declare(adapter: Adapter):
    declared = declared_oms(adapter)
    for account_type in ACCOUNT_TYPES[adapter]:
        if adapter == Adapter.BINANCE:
            assert declared == "OmsType.HEDGING if account_type.is_futures else OmsType.NETTING"
            futures = {
                AccountType.SPOT: BinanceAccountType.SPOT,
                AccountType.MARGIN: BinanceAccountType.MARGIN,
                AccountType.USDT_FUTURES: BinanceAccountType.USDT_FUTURES,
                AccountType.COIN_FUTURES: BinanceAccountType.COIN_FUTURES,
            }[account_type].is_futures
            hedging = futures
        else:
            assert declared == "OmsType.NETTING"
            hedging = False
        assert ((adapter, account_type) in HEDGING_ACCOUNTS) == hedging, (adapter, account_type)
    assert DEFAULT_ACCOUNT_TYPES[adapter] in ACCOUNT_TYPES[adapter]
