"""Live venues: the NautilusTrader adapter a live spec names, as data + execution client configs.

``live_venue(spec, environ) -> LiveVenueClients`` for ``binance`` (spot, margin, usdtFutures,
coinFutures; testnet), ``bybit`` (spot, linear, inverse; testnet, or demo through
``options.demo``), ``okx`` (spot, margin, swap; ``testnet`` selects the demo environment) and
``interactive_brokers`` (cash or margin through an IB Gateway/TWS: ``options.ibg_host``,
``ibg_port``, ``account_id``; ``testnet`` selects the paper gateway's default port).

Credentials come only from the environment variables of ``livestrat.api.runtime_config``
(``LIVESTRAT_VENUE_API_KEY``/``_SECRET``/``_PASSPHRASE``, filled by the operator from
``spec.venue.credentialsSecret``) and are handed to the client configs directly, so
NautilusTrader never falls back to its own variables (``BINANCE_API_KEY`` …). They are never
logged: errors name the variable, never its value. ``spec.venue.options`` go through
``venue_options.convert_options`` (typed, unknown names listed).

The adapter modules are imported only for the adapter in use: each pulls in its own
dependencies (Interactive Brokers needs the ``nautilus_trader[ib]`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nautilus_trader.config import InstrumentProviderConfig, LiveDataClientConfig, LiveExecClientConfig
from nautilus_trader.model.identifiers import InstrumentId

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from livestrat.api.spec import ACCOUNT_TYPES, AccountType, Adapter, LiveStrategySpec
from strategy_runtime.venue_options import convert_options

# spec.py documents these defaults (Venue.account_type); keep them in step.
DEFAULT_ACCOUNT_TYPES: dict[str, AccountType] = {
    Adapter.BINANCE: AccountType.SPOT,
    Adapter.BYBIT: AccountType.LINEAR,
    Adapter.OKX: AccountType.SWAP,
    Adapter.INTERACTIVE_BROKERS: AccountType.MARGIN,
}
# IB Gateway's default API ports: paper 4002, live 4001 (TWS: 7497, 7496; set options.ibg_port).
IB_GATEWAY_PORTS = {True: 4002, False: 4001}

_CREDENTIALS = "credentials come from spec.venue.credentialsSecret, never from options"
_RESERVED_COMMON = {
    "api_key": _CREDENTIALS,
    "api_secret": _CREDENTIALS,
    "api_passphrase": _CREDENTIALS,
    "instrument_provider": "instruments are spec.instruments",
    "routing": "each live strategy trades one venue",
}


class VenueConfigError(ValueError):
    """A live venue cannot be configured from the spec and the environment."""


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    passphrase: str | None

    def __repr__(self) -> str:  # a stray log line must not show them
        return "Credentials(<redacted>)"


@dataclass(frozen=True)
class LiveVenueClients:
    """What ``build_node`` needs for a live venue: configs and factories under one client name."""

    name: str  # the factory / client name, e.g. BINANCE
    venue: str
    account_type: str  # the spec's account type
    data_config: LiveDataClientConfig
    exec_config: LiveExecClientConfig
    data_factory: type
    exec_factory: type


def read_credentials(environ: Mapping[str, str], *, passphrase: bool, adapter: str) -> Credentials:
    """The venue credentials from the environment, or VenueConfigError naming (only) the missing variables."""
    needed = [ENV_API_KEY, ENV_API_SECRET] + ([ENV_API_PASSPHRASE] if passphrase else [])
    missing = [name for name in needed if not environ.get(name)]
    if missing:
        raise VenueConfigError(
            f"the {adapter} adapter needs {', '.join(missing)} in the environment: in a cluster the operator "
            "fills them from the Secret named in spec.venue.credentialsSecret (keys apiKeyKey, apiSecretKey"
            + (", passphraseKey" if passphrase else "")
            + "); check that the Secret and its keys exist"
        )
    return Credentials(
        api_key=environ[ENV_API_KEY],
        api_secret=environ[ENV_API_SECRET],
        passphrase=environ.get(ENV_API_PASSPHRASE) if passphrase else None,
    )


def account_type_of(spec: LiveStrategySpec) -> AccountType:
    adapter = spec.venue.adapter
    account_type = AccountType(spec.venue.account_type or DEFAULT_ACCOUNT_TYPES[adapter])
    if account_type not in ACCOUNT_TYPES[Adapter(adapter)]:
        allowed = "|".join(ACCOUNT_TYPES[Adapter(adapter)])
        raise VenueConfigError(
            f"spec.venue.accountType {account_type} is not offered by {adapter} (allowed: {allowed})"
        )
    return account_type


def _instrument_ids(spec: LiveStrategySpec) -> frozenset[InstrumentId]:
    return frozenset(InstrumentId.from_str(i) for i in spec.instruments)


def _check_venue_name(spec: LiveStrategySpec, default: str) -> str:
    if spec.venue.name not in (None, default):
        raise VenueConfigError(
            f"spec.venue.name {spec.venue.name} differs from the {spec.venue.adapter} adapter's venue {default}: "
            f"leave it out or set {default}"
        )
    return default


def _binance(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters.binance import (
        BINANCE,
        BinanceAccountType,
        BinanceDataClientConfig,
        BinanceExecClientConfig,
        BinanceLiveDataClientFactory,
        BinanceLiveExecClientFactory,
    )

    account_type = account_type_of(spec)
    binance_account = {
        AccountType.SPOT: BinanceAccountType.SPOT,
        AccountType.MARGIN: BinanceAccountType.MARGIN,
        AccountType.USDT_FUTURES: BinanceAccountType.USDT_FUTURES,
        AccountType.COIN_FUTURES: BinanceAccountType.COIN_FUTURES,
    }[account_type]
    venue = _check_venue_name(spec, BINANCE)
    credentials = read_credentials(environ, passphrase=False, adapter="binance")
    reserved = _RESERVED_COMMON | {
        "account_type": "use spec.venue.accountType",
        "testnet": "use spec.venue.testnet",
        "venue": "use spec.venue.name",
    }
    data_options, exec_options = convert_options(
        spec.venue.options, [BinanceDataClientConfig, BinanceExecClientConfig], reserved=reserved, adapter="binance"
    )
    provider = InstrumentProviderConfig(load_all=False, load_ids=_instrument_ids(spec))
    common: dict[str, Any] = {
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
        "account_type": binance_account,
        "testnet": spec.venue.testnet,
        "instrument_provider": provider,
    }
    return LiveVenueClients(
        name=BINANCE,
        venue=venue,
        account_type=account_type,
        data_config=BinanceDataClientConfig(**common, **data_options),
        exec_config=BinanceExecClientConfig(**common, **exec_options),
        data_factory=BinanceLiveDataClientFactory,
        exec_factory=BinanceLiveExecClientFactory,
    )


def _bybit(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters.bybit import (
        BYBIT,
        BybitDataClientConfig,
        BybitExecClientConfig,
        BybitLiveDataClientFactory,
        BybitLiveExecClientFactory,
        BybitProductType,
    )

    account_type = account_type_of(spec)
    product = {
        AccountType.SPOT: BybitProductType.SPOT,
        AccountType.LINEAR: BybitProductType.LINEAR,
        AccountType.INVERSE: BybitProductType.INVERSE,
    }[account_type]
    venue = _check_venue_name(spec, BYBIT)
    credentials = read_credentials(environ, passphrase=False, adapter="bybit")
    reserved = _RESERVED_COMMON | {
        "product_types": "use spec.venue.accountType (spot, linear or inverse)",
        "testnet": "use spec.venue.testnet",
    }
    data_options, exec_options = convert_options(
        spec.venue.options, [BybitDataClientConfig, BybitExecClientConfig], reserved=reserved, adapter="bybit"
    )
    if spec.venue.testnet and (data_options.get("demo") or exec_options.get("demo")):
        raise VenueConfigError("bybit: options.demo and spec.venue.testnet are exclusive: demo trading is not testnet")
    provider = InstrumentProviderConfig(load_all=False, load_ids=_instrument_ids(spec))
    common: dict[str, Any] = {
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
        "product_types": [product],
        "testnet": spec.venue.testnet,
        "instrument_provider": provider,
    }
    return LiveVenueClients(
        name=BYBIT,
        venue=venue,
        account_type=account_type,
        data_config=BybitDataClientConfig(**common, **data_options),
        exec_config=BybitExecClientConfig(**common, **exec_options),
        data_factory=BybitLiveDataClientFactory,
        exec_factory=BybitLiveExecClientFactory,
    )


def _okx(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters.okx import (
        OKX,
        OKXDataClientConfig,
        OKXExecClientConfig,
        OKXLiveDataClientFactory,
        OKXLiveExecClientFactory,
    )
    from nautilus_trader.core.nautilus_pyo3 import OKXInstrumentType

    account_type = account_type_of(spec)
    instrument_type = {
        AccountType.SPOT: OKXInstrumentType.SPOT,
        AccountType.MARGIN: OKXInstrumentType.MARGIN,
        AccountType.SWAP: OKXInstrumentType.SWAP,
    }[account_type]
    venue = _check_venue_name(spec, OKX)
    credentials = read_credentials(environ, passphrase=True, adapter="okx")
    reserved = _RESERVED_COMMON | {
        "instrument_types": "use spec.venue.accountType (spot, margin or swap)",
        "is_demo": "use spec.venue.testnet (OKX's demo trading)",
    }
    data_options, exec_options = convert_options(
        spec.venue.options, [OKXDataClientConfig, OKXExecClientConfig], reserved=reserved, adapter="okx"
    )
    provider = InstrumentProviderConfig(load_all=False, load_ids=_instrument_ids(spec))
    common: dict[str, Any] = {
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
        "api_passphrase": credentials.passphrase,
        "instrument_types": (instrument_type,),
        "is_demo": spec.venue.testnet,
        "instrument_provider": provider,
    }
    return LiveVenueClients(
        name=OKX,
        venue=venue,
        account_type=account_type,
        data_config=OKXDataClientConfig(**common, **data_options),
        exec_config=OKXExecClientConfig(**common, **exec_options),
        data_factory=OKXLiveDataClientFactory,
        exec_factory=OKXLiveExecClientFactory,
    )


def _interactive_brokers(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    try:
        from nautilus_trader.adapters.interactive_brokers.common import IB
        from nautilus_trader.adapters.interactive_brokers.config import (
            InteractiveBrokersDataClientConfig,
            InteractiveBrokersExecClientConfig,
            InteractiveBrokersInstrumentProviderConfig,
            SymbologyMethod,
        )
        from nautilus_trader.adapters.interactive_brokers.factories import (
            InteractiveBrokersLiveDataClientFactory,
            InteractiveBrokersLiveExecClientFactory,
        )
    except ImportError as exc:
        raise VenueConfigError(
            f"the interactive_brokers adapter is not installed in this runtime ({exc}): it needs the "
            "nautilus_trader[ib] extra"
        ) from None

    account_type = account_type_of(spec)
    reserved = _RESERVED_COMMON | {
        "dockerized_gateway": "livestrat connects to a running IB Gateway; it does not start one",
    }
    data_options, exec_options = convert_options(
        spec.venue.options,
        [InteractiveBrokersDataClientConfig, InteractiveBrokersExecClientConfig],
        reserved=reserved,
        adapter="interactive_brokers",
    )
    if not exec_options.get("account_id"):
        raise VenueConfigError(
            "interactive_brokers needs spec.venue.options.account_id: the IB account to trade (for example DU1234567)"
        )
    provider = InteractiveBrokersInstrumentProviderConfig(
        symbology_method=SymbologyMethod.IB_SIMPLIFIED, load_ids=_instrument_ids(spec)
    )
    port = IB_GATEWAY_PORTS[spec.venue.testnet]
    common: dict[str, Any] = {"instrument_provider": provider, "ibg_port": port}
    # The IB Gateway holds the login; livestrat needs no API key for it.
    data_config = InteractiveBrokersDataClientConfig(**(common | data_options))
    exec_config = InteractiveBrokersExecClientConfig(**(common | exec_options))
    return LiveVenueClients(
        name=IB,
        venue=IB,
        account_type=account_type,
        data_config=data_config,
        exec_config=exec_config,
        data_factory=InteractiveBrokersLiveDataClientFactory,
        exec_factory=InteractiveBrokersLiveExecClientFactory,
    )


_BUILDERS = {
    Adapter.BINANCE: _binance,
    Adapter.BYBIT: _bybit,
    Adapter.OKX: _okx,
    Adapter.INTERACTIVE_BROKERS: _interactive_brokers,
}


def live_venue(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    """The client configs and factories of the spec's live adapter (no connection is made here)."""
    builder = _BUILDERS.get(Adapter(spec.venue.adapter))
    if builder is None:
        raise VenueConfigError(
            f"spec.venue.adapter {spec.venue.adapter} is not a live adapter (live: {', '.join(_BUILDERS)})"
        )
    return builder(spec, environ)
