"""The endpoints override: a live spec, unchanged, pointed at a local venue for a rehearsal or a test.

``LIVESTRAT_VENUE_ENDPOINTS`` (JSON, in the runtime's environment, never in the manifest) moves
the Binance adapter's HTTP, market-stream, WebSocket-API and futures user-data endpoints onto
loopback URLs. These tests read the client configs the node is built with: no connection is made.
"""

from __future__ import annotations

import json

import pytest

from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS, VenueEndpoints
from strategy_runtime.live.venues import VenueConfigError, live_venue
from tests.support.live_nodes import FAKE_CREDENTIALS, build_without_connecting, live_config, live_manifest

EMULATOR = {
    "http": "http://127.0.0.1:18080",
    "ws_api": "ws://127.0.0.1:18080/ws-api/v3",
    "ws_stream": "ws://127.0.0.1:18081",
    "admin": "http://127.0.0.1:18080/_emulator",  # the emulator's ready line, given as it is printed
}


def environ_with(endpoints: dict[str, str] | str) -> dict[str, str]:
    value = endpoints if isinstance(endpoints, str) else json.dumps(endpoints)
    return FAKE_CREDENTIALS | {ENV_VENUE_ENDPOINTS: value}


def spot_spec(options: dict[str, str] | None = None):
    return live_config(live_manifest("binance", "spot", "BTCUSDT.BINANCE", options=options)).spec


async def test_a_spot_node_built_with_the_override_connects_only_to_its_urls():
    config = live_config(live_manifest("binance", "spot", "BTCUSDT.BINANCE"))
    node = await build_without_connecting(config, environ_with(EMULATOR))
    try:
        data, execution = node.node._config.data_clients["BINANCE"], node.node._config.exec_clients["BINANCE"]
        # Both configs have base_url_ws, with different meanings: market streams for data, the WS API for orders.
        assert (data.base_url_http, data.base_url_ws) == (EMULATOR["http"], EMULATOR["ws_stream"])
        assert (execution.base_url_http, execution.base_url_ws) == (EMULATOR["http"], EMULATOR["ws_api"])
        assert execution.base_url_ws_stream == EMULATOR["ws_stream"]  # futures user data: unused by spot
        assert (data.api_key, execution.api_secret) == (
            FAKE_CREDENTIALS["LIVESTRAT_VENUE_API_KEY"],
            FAKE_CREDENTIALS["LIVESTRAT_VENUE_API_SECRET"],
        )
    finally:
        node.dispose()


def test_a_usd_m_node_takes_the_usd_m_market_streams_of_the_emulator_s_ready_line():
    spec = live_config(live_manifest("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE")).spec
    ready_line = EMULATOR | {
        "ws_stream_usdm": "ws://127.0.0.1:18081/fstream",
        "ws_api_usdm": "ws://127.0.0.1:18080/ws-fapi/v1",
        "ws_private": "ws://127.0.0.1:18081/p",
    }
    clients = live_venue(spec, environ_with(ready_line))
    assert clients.data_config.base_url_ws == "ws://127.0.0.1:18081/fstream"
    assert clients.exec_config.base_url_ws == "ws://127.0.0.1:18080/ws-fapi/v1"  # an Ed25519 key's WebSocket API
    assert clients.exec_config.base_url_ws_stream == "ws://127.0.0.1:18081/p"
    spot = live_venue(spot_spec(), environ_with(ready_line))
    assert spot.data_config.base_url_ws == EMULATOR["ws_stream"]
    assert spot.exec_config.base_url_ws == EMULATOR["ws_api"]


def test_futures_user_data_goes_to_ws_private_when_given_else_to_the_market_stream_host():
    spec = live_config(live_manifest("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE")).spec
    same_host = live_venue(spec, environ_with(EMULATOR))
    # As Binance's testnet serves the listen-key stream from its market-stream host.
    assert same_host.exec_config.base_url_ws_stream == EMULATOR["ws_stream"]
    private = EMULATOR | {"ws_private": "ws://127.0.0.1:18082/private"}
    apart = live_venue(spec, environ_with(private))
    assert apart.exec_config.base_url_ws_stream == "ws://127.0.0.1:18082/private"
    assert apart.data_config.base_url_ws == EMULATOR["ws_stream"]


def test_without_the_variable_the_adapter_keeps_its_own_urls():
    clients = live_venue(spot_spec(), FAKE_CREDENTIALS)
    assert clients.data_config.base_url_http is None and clients.data_config.base_url_ws is None
    assert clients.exec_config.base_url_http is None and clients.exec_config.base_url_ws is None


def test_the_override_wins_over_the_manifest_s_base_url_options_and_proxy():
    # A rehearsal must never reach what the options name (the real venue or a proxy to it, with real keys).
    options = {  # (base_url_ws is refused for Binance whatever the override: one name, two endpoints)
        "base_url_http": "https://api.example.invalid",
        "base_url_ws_stream": "wss://stream.example.invalid",
        "proxy_url": "http://proxy.example.invalid:3128",
    }
    clients = live_venue(spot_spec(options), environ_with(EMULATOR))
    assert clients.data_config.base_url_http == clients.exec_config.base_url_http == EMULATOR["http"]
    assert clients.data_config.base_url_ws == EMULATOR["ws_stream"]
    assert clients.exec_config.base_url_ws == EMULATOR["ws_api"]
    assert clients.exec_config.base_url_ws_stream == EMULATOR["ws_stream"]
    assert clients.data_config.proxy_url is None and clients.exec_config.proxy_url is None


@pytest.mark.parametrize(
    ("adapter", "account_type", "instrument"),
    [
        ("bybit", "linear", "BTCUSDT-LINEAR.BYBIT"),
        ("okx", "swap", "BTC-USDT-SWAP.OKX"),
        ("deribit", "future", "BTC-PERPETUAL.DERIBIT"),
        ("interactive_brokers", "margin", "AAPL.NASDAQ"),
    ],
)
def test_an_adapter_the_override_cannot_redirect_is_refused(adapter, account_type, instrument):
    spec = live_config(live_manifest(adapter, account_type, instrument)).spec
    with pytest.raises(VenueConfigError) as caught:
        live_venue(spec, environ_with(EMULATOR))
    message = str(caught.value)
    assert ENV_VENUE_ENDPOINTS in message and adapter in message and "binance" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{not json", "is not JSON"),
        ('["http://127.0.0.1:1"]', "a JSON object"),
        (EMULATOR | {"http": "http://10.1.2.3:8080"}, "http: must be a loopback address"),
        (EMULATOR | {"ws_api": "ws://venue.example.com/ws-api/v3"}, "ws_api: must be a loopback address"),
        (EMULATOR | {"http": "ws://127.0.0.1:1"}, "http: must be an http:// or https:// URL"),
        (EMULATOR | {"ws_stream": "http://127.0.0.1:1"}, "ws_stream: must be a ws:// or wss:// URL"),
        ({k: v for k, v in EMULATOR.items() if k != "ws_api"}, "ws_api: required"),
        (EMULATOR | {"ws_apl": "ws://127.0.0.1:1"}, "ws_apl: not an endpoint"),
    ],
)
def test_a_bad_override_names_the_variable_and_the_field(value, expected):
    with pytest.raises(VenueConfigError) as caught:
        live_venue(spot_spec(), environ_with(value))
    assert ENV_VENUE_ENDPOINTS in str(caught.value) and expected in str(caught.value)


def test_errors_never_echo_the_value_and_a_url_holding_credentials_is_refused():
    secret = "hunter2-Zq8w"
    with pytest.raises(VenueConfigError) as caught:
        live_venue(spot_spec(), environ_with(EMULATOR | {"http": f"http://user:{secret}@127.0.0.1:1"}))
    assert "http: must not hold a user or password" in str(caught.value)
    assert secret not in str(caught.value)
    with pytest.raises(VenueConfigError) as caught:
        live_venue(spot_spec(), environ_with(f'{{"http": "{secret}'))
    assert secret not in str(caught.value)


def test_the_endpoints_and_clients_never_show_credentials():
    clients = live_venue(spot_spec(), environ_with(EMULATOR))
    endpoints = VenueEndpoints.from_environ(environ_with(EMULATOR))
    for text in (repr(clients), repr(endpoints), str(endpoints)):
        assert not any(value in text for value in FAKE_CREDENTIALS.values())
