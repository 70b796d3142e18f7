"""Venue accounts: which account a live spec trades.

Shared by the runtime (``strategy_runtime.live.venues`` books the default account type) and the
operator (``strategy_operator.decide.claims``: one live strategy per venue account and instrument).

**Why every live account is claimed.** A live runtime's strategy claims every instrument of its spec
(``StrategyConfig.external_order_claims``, docs/runtime.md "A restarted strategy takes back its orders and its
position"): after a restart it adopts every order and position of those instruments the venue reports for the
account, whoever placed them; a halt then cancels every order the node holds, and the risk guard counts every
position of the instrument. Two live strategies on one account and instrument would each take the other's for
its own, whatever the account's order management (OMS) type. On a NETTING account (one position per
instrument: every adapter and account type here but Binance's ``usdtFutures`` and ``coinFutures``, whose
NautilusTrader 1.231 clients declare HEDGING; ``tests/runtime/test_accounts.py`` reads them from the installed
clients) they would also share the venue's one position. Paper strategies trade their own simulated account.

**What identifies an account** without reading a Secret: the adapter, the market (account type) and
the environment (``testnet``), and the credentials Secret's name in the strategy's namespace; for
Interactive Brokers, whose login is the gateway's, the ``options.account_id`` it trades. Two Secrets
holding the same API key are two accounts here: the operator never reads a Secret's content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livestrat.api.spec import AccountType, Adapter, Mode

# spec.py documents these defaults (Venue.account_type); keep them in step.
DEFAULT_ACCOUNT_TYPES: dict[str, AccountType] = {
    Adapter.BINANCE: AccountType.SPOT,
    Adapter.BYBIT: AccountType.LINEAR,
    Adapter.OKX: AccountType.SWAP,
    Adapter.DERIBIT: AccountType.FUTURE,
    Adapter.INTERACTIVE_BROKERS: AccountType.MARGIN,
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def claimed_account(spec: Mapping[str, Any]) -> str | None:
    """The venue account a spec (as stored: camelCase, possibly malformed) trades live, as one key: every live
    account is claimed, NETTING or HEDGING (see above); None for paper (its own simulated account) or a spec that
    does not say which."""
    if not isinstance(spec, Mapping) or spec.get("mode") != Mode.LIVE:
        return None
    venue = spec.get("venue")
    if not isinstance(venue, Mapping):
        return None
    adapter = _text(venue.get("adapter"))
    if adapter not in DEFAULT_ACCOUNT_TYPES:
        return None
    account_type = _text(venue.get("accountType")) or str(DEFAULT_ACCOUNT_TYPES[adapter])
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
