"""Live venues: the NautilusTrader adapter a live spec names, as data + execution client configs.

``live_venue(spec, environ) -> LiveVenueClients`` for ``binance`` (spot, margin, usdtFutures,
coinFutures; testnet), ``bybit`` (spot, linear, inverse; testnet, or demo through
``options.demo``), ``okx`` (spot, margin, swap; ``testnet`` selects the demo environment),
``deribit`` (future, option, spot, futureCombo, optionCombo; ``testnet`` selects its test
environment) and ``interactive_brokers`` (cash or margin through an IB Gateway/TWS: ``options.ibg_host``,
``ibg_port``, ``account_id``; ``testnet`` selects the paper gateway's default port).

Credentials come only from the environment variables of ``livestrat.api.runtime_config``
(``LIVESTRAT_VENUE_API_KEY``/``_SECRET``/``_PASSPHRASE``, filled by the operator from
``spec.venue.credentialsSecret``) and are handed to the client configs directly, so
NautilusTrader never falls back to its own variables (``BINANCE_API_KEY`` …). They are never
logged: errors name the variable, never its value. ``spec.venue.options`` go through
``venue_options.convert_options`` (typed, unknown names listed).

The adapter modules are imported only for the adapter in use: each pulls in its own
dependencies (Interactive Brokers needs the ``nautilus_trader[ib]`` extra).

A rehearsal or a test points the Binance adapter at a local venue with the endpoints override
(``live.endpoints``: ``LIVESTRAT_VENUE_ENDPOINTS`` in the environment, never in the manifest),
applied last, over ``spec.venue.options``; any other adapter is refused while it is set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from nautilus_trader.config import InstrumentProviderConfig, LiveDataClientConfig, LiveExecClientConfig
from nautilus_trader.model.identifiers import InstrumentId

from livestrat.api.accounts import DEFAULT_ACCOUNT_TYPES
from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from livestrat.api.spec import ACCOUNT_TYPES, AccountType, Adapter, LiveStrategySpec
from strategy_runtime.live.binance import BinanceExecClientFactory
from strategy_runtime.live.endpoints import (
    BINANCE_DATA_FIELDS,
    BINANCE_EXEC_FIELDS,
    BINANCE_USDM_DATA_FIELDS,
    BINANCE_USDM_EXEC_FIELDS,
    ENV_VENUE_ENDPOINTS,
    EndpointsError,
    VenueEndpoints,
)
from strategy_runtime.live.venue_options import convert_options

logger = logging.getLogger("livestrat.venues")

# IB Gateway's default API ports: paper 4002, live 4001 (TWS: 7497, 7496; set options.ibg_port).
IB_GATEWAY_PORTS = {True: 4002, False: 4001}

_CREDENTIALS = "credentials come from spec.venue.credentialsSecret, never from options"
_RESERVED_COMMON = {
    "api_key": _CREDENTIALS,
    "api_secret": _CREDENTIALS,
    "api_passphrase": _CREDENTIALS,
    "instrument_provider": "instruments are spec.instruments",
    "routing": "each live strategy trades one venue",
    # NautilusTrader 1.231's adapters name their test/demo/live switch `environment`.
    "environment": "use spec.venue.testnet",
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
    # What NautilusTrader books the account as (CASH or MARGIN): decides whether the
    # RiskEngine checks max_notional_per_order at all (it skips MARGIN accounts).
    nautilus_account_type: str
    data_config: LiveDataClientConfig
    exec_config: LiveExecClientConfig
    data_factory: type
    exec_factory: type
    # Whether the venue reports positions for this account: Binance spot and margin have none (balances only),
    # and reconciling the node's position against its always-flat reports would invent a closing fill.
    reports_positions: bool = True

    def __repr__(self) -> str:  # the configs hold credentials
        return f"LiveVenueClients(name={self.name!r}, venue={self.venue!r}, account_type={self.account_type!r})"


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


@dataclass(frozen=True)
class _Adapter:
    """One NautilusTrader adapter's config classes and factories, under its client name."""

    name: str
    data_config: type
    exec_config: type
    data_factory: type
    exec_factory: type

    def options(self, spec: LiveStrategySpec, reserved: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``spec.venue.options`` typed for the data config and for the execution config."""
        data, execution = convert_options(
            spec.venue.options,
            [self.data_config, self.exec_config],
            reserved=_RESERVED_COMMON | dict(reserved),
            adapter=str(spec.venue.adapter),
        )
        return data, execution

    def clients(
        self,
        spec: LiveStrategySpec,
        common: Mapping[str, Any],
        options: tuple[dict[str, Any], dict[str, Any]],
        *,
        booked_as: str,
        exec_factory: type | None = None,
        reports_positions: bool = True,
    ) -> LiveVenueClients:
        data_options, exec_options = options
        return LiveVenueClients(
            name=self.name,
            venue=_check_venue_name(spec, self.name),
            account_type=account_type_of(spec),
            nautilus_account_type=booked_as,
            # Options may override a default of ``common`` (IB's port), never a reserved field.
            data_config=self.data_config(**(dict(common) | data_options)),
            exec_config=self.exec_config(**(dict(common) | exec_options)),
            data_factory=self.data_factory,
            exec_factory=exec_factory or self.exec_factory,
            reports_positions=reports_positions,
        )


def _with_credentials(spec: LiveStrategySpec, credentials: Credentials) -> dict[str, Any]:
    """The settings every API-key adapter takes: the credentials and the instruments to load."""
    return {
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
        "instrument_provider": InstrumentProviderConfig(load_all=False, load_ids=_instrument_ids(spec)),
    }


def _binance(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters import binance
    from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment

    account_type = account_type_of(spec)
    if account_type == AccountType.COIN_FUTURES and spec.venue.testnet:
        # NautilusTrader 1.231 has no WebSocket API testnet for COIN-M (get_ws_api_base_url raises).
        raise VenueConfigError("binance coinFutures has no testnet in NautilusTrader 1.231: set testnet: false")
    adapter = _Adapter(
        binance.BINANCE,
        binance.BinanceDataClientConfig,
        binance.BinanceExecClientConfig,
        binance.BinanceLiveDataClientFactory,
        binance.BinanceLiveExecClientFactory,
    )
    options = adapter.options(
        spec,
        {
            "account_type": "use spec.venue.accountType",
            "venue": "use spec.venue.name",
            # Both configs have a field of this name, and an option goes to every config that has it: one URL
            # would reach two endpoints. base_url_ws_stream (futures user data) is the execution client's alone.
            "base_url_ws": "NautilusTrader's Binance data client reads it as the market streams' URL and its "
            "execution client as the WebSocket API's, so one value cannot be right for both; the clients derive "
            "both from spec.venue.testnet and the account type",
        },
    )
    common = _with_credentials(spec, read_credentials(environ, passphrase=False, adapter="binance")) | {
        "account_type": {
            AccountType.SPOT: binance.BinanceAccountType.SPOT,
            AccountType.MARGIN: binance.BinanceAccountType.MARGIN,
            AccountType.USDT_FUTURES: binance.BinanceAccountType.USDT_FUTURES,
            AccountType.COIN_FUTURES: binance.BinanceAccountType.COIN_FUTURES,
        }[account_type],
        "environment": BinanceEnvironment.TESTNET if spec.venue.testnet else BinanceEnvironment.LIVE,
    }
    return adapter.clients(
        spec,
        common,
        options,
        booked_as="CASH" if account_type == AccountType.SPOT else "MARGIN",
        # Reconciles every instrument of the spec, not only those in the (empty) cache of a new process.
        exec_factory=BinanceExecClientFactory,
        # NautilusTrader's Binance spot/margin client reports no position (a spot account holds balances).
        reports_positions=account_type in (AccountType.USDT_FUTURES, AccountType.COIN_FUTURES),
    )


def _bybit(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters import bybit
    from nautilus_trader.core.nautilus_pyo3 import BybitEnvironment

    account_type = account_type_of(spec)
    adapter = _Adapter(
        bybit.BYBIT,
        bybit.BybitDataClientConfig,
        bybit.BybitExecClientConfig,
        bybit.BybitLiveDataClientFactory,
        bybit.BybitLiveExecClientFactory,
    )
    options = adapter.options(
        spec,
        {
            "product_types": "use spec.venue.accountType (spot, linear or inverse)",
        },
    )
    common = _with_credentials(spec, read_credentials(environ, passphrase=False, adapter="bybit")) | {
        "product_types": [
            {
                AccountType.SPOT: bybit.BybitProductType.SPOT,
                AccountType.LINEAR: bybit.BybitProductType.LINEAR,
                AccountType.INVERSE: bybit.BybitProductType.INVERSE,
            }[account_type]
        ],
        "environment": BybitEnvironment.TESTNET if spec.venue.testnet else BybitEnvironment.MAINNET,
    }
    return adapter.clients(spec, common, options, booked_as="CASH" if account_type == AccountType.SPOT else "MARGIN")


def _okx(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters import okx
    from nautilus_trader.core.nautilus_pyo3 import OKXEnvironment, OKXInstrumentType

    account_type = account_type_of(spec)
    adapter = _Adapter(
        okx.OKX,
        okx.OKXDataClientConfig,
        okx.OKXExecClientConfig,
        okx.OKXLiveDataClientFactory,
        okx.OKXLiveExecClientFactory,
    )
    options = adapter.options(
        spec,
        {
            "instrument_types": "use spec.venue.accountType (spot, margin or swap)",
            "environment": "use spec.venue.testnet (OKX's demo trading)",
        },
    )
    credentials = read_credentials(environ, passphrase=True, adapter="okx")
    common = _with_credentials(spec, credentials) | {
        "api_passphrase": credentials.passphrase,
        "instrument_types": (
            {
                AccountType.SPOT: OKXInstrumentType.SPOT,
                AccountType.MARGIN: OKXInstrumentType.MARGIN,
                AccountType.SWAP: OKXInstrumentType.SWAP,
            }[account_type],
        ),
        "environment": OKXEnvironment.DEMO if spec.venue.testnet else OKXEnvironment.LIVE,
    }
    # Spot is CASH unless options.use_spot_margin (OKXExecutionClient._derive_account_type).
    spot_cash = account_type == AccountType.SPOT and not options[1].get("use_spot_margin")
    return adapter.clients(
        spec,
        common,
        options,
        booked_as="CASH" if spot_cash else "MARGIN",
    )


# Deribit config fields NautilusTrader 1.231's Deribit clients never read: refused rather than
# accepted and silently ignored.
_DERIBIT_IGNORED = "NautilusTrader 1.231's Deribit clients ignore it"


def _deribit(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    from nautilus_trader.adapters import deribit
    from nautilus_trader.core.nautilus_pyo3 import DeribitEnvironment

    account_type = account_type_of(spec)
    adapter = _Adapter(
        deribit.DERIBIT,
        deribit.DeribitDataClientConfig,
        deribit.DeribitExecClientConfig,
        deribit.DeribitLiveDataClientFactory,
        deribit.DeribitLiveExecClientFactory,
    )
    options = adapter.options(
        spec,
        {
            "product_types": "use spec.venue.accountType (future, option, spot, futureCombo or optionCombo)",
            "environment": "use spec.venue.testnet (Deribit's test environment)",
            # DeribitExecutionClient builds its websocket with DeribitWebSocketClient.with_credentials(),
            # which takes no URL: orders would go to the environment's host while market data went here.
            "base_url_ws": "NautilusTrader 1.231's Deribit execution client ignores it (its websocket always "
            "connects to the environment's URL), so market data and orders would part ways",
            "transport_backend": _DERIBIT_IGNORED,
            "update_instruments_interval_mins": _DERIBIT_IGNORED,
            "auto_load_missing_instruments": _DERIBIT_IGNORED,
        },
    )
    # Both credentials given: the adapter's Rust clients fall back to DERIBIT_API_KEY/_SECRET
    # (DERIBIT_TESTNET_API_KEY/_SECRET on testnet) only when neither is.
    common = _with_credentials(spec, read_credentials(environ, passphrase=False, adapter="deribit")) | {
        "product_types": (
            {
                AccountType.FUTURE: deribit.DeribitProductType.FUTURE,
                AccountType.OPTION: deribit.DeribitProductType.OPTION,
                AccountType.SPOT: deribit.DeribitProductType.SPOT,
                AccountType.FUTURE_COMBO: deribit.DeribitProductType.FUTURE_COMBO,
                AccountType.OPTION_COMBO: deribit.DeribitProductType.OPTION_COMBO,
            }[account_type],
        ),
        "environment": DeribitEnvironment.TESTNET if spec.venue.testnet else DeribitEnvironment.MAINNET,
    }
    # DeribitExecutionClient books one MARGIN account for every product type, spot included.
    return adapter.clients(spec, common, options, booked_as="MARGIN")


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

    adapter = _Adapter(
        IB,
        InteractiveBrokersDataClientConfig,
        InteractiveBrokersExecClientConfig,
        InteractiveBrokersLiveDataClientFactory,
        InteractiveBrokersLiveExecClientFactory,
    )
    options = adapter.options(
        spec, {"dockerized_gateway": "livestrat connects to a running IB Gateway; it does not start one"}
    )
    if not options[1].get("account_id"):
        raise VenueConfigError(
            "interactive_brokers needs spec.venue.options.account_id: the IB account to trade (for example DU1234567)"
        )
    # The IB Gateway holds the login: no API key here. Paper or live is the gateway's port.
    common = {
        "instrument_provider": InteractiveBrokersInstrumentProviderConfig(
            symbology_method=SymbologyMethod.IB_SIMPLIFIED, load_ids=_instrument_ids(spec)
        ),
        "ibg_port": IB_GATEWAY_PORTS[spec.venue.testnet],
    }
    # The IB execution client always books a margin account, whatever spec.venue.accountType says.
    return adapter.clients(spec, common, options, booked_as="MARGIN")


_BUILDERS = {
    Adapter.BINANCE: _binance,
    Adapter.BYBIT: _bybit,
    Adapter.OKX: _okx,
    Adapter.DERIBIT: _deribit,
    Adapter.INTERACTIVE_BROKERS: _interactive_brokers,
}


# The adapters the endpoints override can point elsewhere, with the fields it sets in each config.
_REDIRECTABLE = {Adapter.BINANCE: (BINANCE_DATA_FIELDS, BINANCE_EXEC_FIELDS)}


def venue_endpoints(spec: LiveStrategySpec, environ: Mapping[str, str]) -> VenueEndpoints | None:
    """The endpoints override the environment gives for ``spec``'s adapter, or None; VenueConfigError if unusable."""
    try:
        endpoints = VenueEndpoints.from_environ(environ)
    except EndpointsError as exc:
        raise VenueConfigError(str(exc)) from None
    if endpoints is not None and Adapter(spec.venue.adapter) not in _REDIRECTABLE:
        raise VenueConfigError(
            f"{ENV_VENUE_ENDPOINTS} is set, and the {spec.venue.adapter} adapter cannot be pointed at it: the "
            f"override (for rehearsals and tests) redirects only {', '.join(_REDIRECTABLE)}, whose protocol the "
            f"venue emulator speaks. Unset {ENV_VENUE_ENDPOINTS} to trade at the venue itself"
        )
    return endpoints


def _redirected(spec: LiveStrategySpec, clients: LiveVenueClients, endpoints: VenueEndpoints) -> LiveVenueClients:
    data_fields, exec_fields = _REDIRECTABLE[Adapter(spec.venue.adapter)]
    if clients.account_type == AccountType.USDT_FUTURES:
        # USD-M market streams and WebSocket API, where served apart from spot's
        data_fields, exec_fields = BINANCE_USDM_DATA_FIELDS, BINANCE_USDM_EXEC_FIELDS
    replaced = sorted(set(spec.venue.options or {}) & (set(data_fields) | set(exec_fields)))
    if replaced:
        logger.warning(
            "venue: spec.venue.options %s replaced by %s for this run (a rehearsal never reaches the venue)",
            ", ".join(replaced),
            ENV_VENUE_ENDPOINTS,
        )
    logger.info(
        "venue: %s redirected by %s to %s (REST), %s (market streams), %s (WebSocket API)",
        clients.name,
        ENV_VENUE_ENDPOINTS,
        endpoints.http,
        endpoints.ws_stream,
        endpoints.ws_api,
    )
    return LiveVenueClients(
        name=clients.name,
        venue=clients.venue,
        account_type=clients.account_type,
        nautilus_account_type=clients.nautilus_account_type,
        data_config=msgspec.structs.replace(clients.data_config, **endpoints.fields(data_fields)),
        exec_config=msgspec.structs.replace(clients.exec_config, **endpoints.fields(exec_fields)),
        data_factory=clients.data_factory,
        exec_factory=clients.exec_factory,
        reports_positions=clients.reports_positions,
    )


def live_venue(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveVenueClients:
    """The client configs and factories of the spec's live adapter (no connection is made here)."""
    builder = _BUILDERS.get(Adapter(spec.venue.adapter))
    if builder is None:
        raise VenueConfigError(
            f"spec.venue.adapter {spec.venue.adapter} is not a live adapter (live: {', '.join(_BUILDERS)})"
        )
    endpoints = venue_endpoints(spec, environ)
    clients = builder(spec, environ)
    return clients if endpoints is None else _redirected(spec, clients, endpoints)
