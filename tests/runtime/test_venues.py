"""Live adapters: each node builds with the right client configs and credentials, up to connecting.

There is no venue network here, and none is needed: a node's clients connect in
``start()``, which these tests never call. The credentials are fake but recognisable, and a
separate process builds every adapter at DEBUG log level so its whole output can be searched.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from nautilus_trader.core.nautilus_pyo3 import BybitEnvironment, OKXEnvironment
from nautilus_trader.model.identifiers import InstrumentId

from livestrat.api.resource import LiveStrategy
from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from livestrat.api.spec import ACCOUNT_TYPES, LIVE_ADAPTERS, Venue
from livestrat.api.validation import problems
from strategy_runtime.live.venue_options import VenueOptionError
from strategy_runtime.live.venues import _BUILDERS, DEFAULT_ACCOUNT_TYPES, VenueConfigError, live_venue
from tests.support.live_nodes import (
    FAKE_CREDENTIALS,
    LIVE_CASES,
    build_without_connecting,
    live_config,
    live_manifest,
)
from tests.support.runtime import ROOT
from tests.support.secrets import fragments

KEY, SECRET, PASSPHRASE = (FAKE_CREDENTIALS[k] for k in (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE))


OKX_VARIABLES = ("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE")
# Where NautilusTrader's Deribit clients look for credentials when their config has none.
DERIBIT_VARIABLES = ("DERIBIT_API_KEY", "DERIBIT_API_SECRET", "DERIBIT_TESTNET_API_KEY", "DERIBIT_TESTNET_API_SECRET")


@pytest.fixture(autouse=True)
def _okx_environment(monkeypatch):
    # OKX's websocket client reads OKX_API_* from the process environment: the build exports them
    # for its own duration only. Whatever a test does, the test process's environment is restored.
    # Deribit's read DERIBIT_* when handed no credentials: none is set, unless a test sets decoys.
    for name in OKX_VARIABLES + DERIBIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


async def build(adapter, account_type, instrument, *, testnet=True, options=None, environ=FAKE_CREDENTIALS):
    config = live_config(live_manifest(adapter, account_type, instrument, testnet=testnet, options=options))
    node = await build_without_connecting(config, environ)
    cfg = node.node._config
    return node, cfg.data_clients, cfg.exec_clients


@pytest.mark.parametrize(
    ("account_type", "instrument", "testnet", "binance_account", "booked_as"),
    [
        ("spot", "BTCUSDT.BINANCE", True, "SPOT", "CASH"),
        ("margin", "BTCUSDT.BINANCE", True, "MARGIN", "MARGIN"),
        ("usdtFutures", "BTCUSDT-PERP.BINANCE", True, "USDT_FUTURES", "MARGIN"),
        ("coinFutures", "BTCUSD_PERP.BINANCE", False, "COIN_FUTURES", "MARGIN"),
    ],
)
async def test_binance_builds_for_each_account_type(account_type, instrument, testnet, binance_account, booked_as):
    node, data, execution = await build("binance", account_type, instrument, testnet=testnet)
    try:
        assert node.kernel.data_engine.registered_clients == node.kernel.exec_engine.registered_clients
        assert [str(c) for c in node.kernel.exec_engine.registered_clients] == ["BINANCE"]
        for config in (data["BINANCE"], execution["BINANCE"]):
            assert config.account_type.name == binance_account
            assert config.environment.name == ("TESTNET" if testnet else "LIVE") and config.us is False
            assert (config.api_key, config.api_secret) == (KEY, SECRET)
            assert config.instrument_provider.load_ids == frozenset({InstrumentId.from_str(instrument)})
        assert type(node.kernel.exec_engine._clients[node.kernel.exec_engine.registered_clients[0]]).__name__ in {
            "BinanceSpotExecutionClient",
            "BinanceFuturesExecutionClient",
        }
        assert node.nautilus_account_type == booked_as
        assert node.node._config.exec_engine.reconciliation, "a live node reconciles with the venue at start"
        assert node.node._config.risk_engine.max_order_submit_rate == "100/00:00:01", "live rates are as written"
    finally:
        node.dispose()


async def test_binance_coin_futures_has_no_testnet():
    with pytest.raises(VenueConfigError, match="no testnet"):
        await build("binance", "coinFutures", "BTCUSD_PERP.BINANCE", testnet=True)


@pytest.mark.parametrize(
    ("account_type", "instrument", "product", "booked_as"),
    [
        ("spot", "BTCUSDT-SPOT.BYBIT", "SPOT", "CASH"),
        ("linear", "BTCUSDT-LINEAR.BYBIT", "LINEAR", "MARGIN"),
        ("inverse", "BTCUSD-INVERSE.BYBIT", "INVERSE", "MARGIN"),
    ],
)
async def test_bybit_builds_for_each_product(account_type, instrument, product, booked_as):
    node, data, execution = await build("bybit", account_type, instrument)
    try:
        for config in (data["BYBIT"], execution["BYBIT"]):
            assert [p.name.upper() for p in config.product_types] == [product]
            assert config.environment == BybitEnvironment.TESTNET
            assert (config.api_key, config.api_secret) == (KEY, SECRET)
        assert node.nautilus_account_type == booked_as
    finally:
        node.dispose()


async def test_bybit_mainnet_and_a_refused_environment_option():
    # NautilusTrader 1.231 replaced testnet/demo with one `environment`; livestrat sets it from spec.venue.testnet.
    node, data, execution = await build("bybit", "linear", "BTCUSDT-LINEAR.BYBIT", testnet=False)
    try:
        assert data["BYBIT"].environment == execution["BYBIT"].environment == BybitEnvironment.MAINNET
    finally:
        node.dispose()
    with pytest.raises(VenueOptionError, match=r"environment cannot be set as an option: use spec\.venue\.testnet"):
        await build("bybit", "linear", "BTCUSDT-LINEAR.BYBIT", options={"environment": "demo"})


@pytest.mark.parametrize(
    ("account_type", "instrument", "okx_type", "booked_as"),
    [
        ("spot", "BTC-USDT.OKX", "SPOT", "CASH"),
        ("margin", "BTC-USDT.OKX", "MARGIN", "MARGIN"),
        ("swap", "BTC-USDT-SWAP.OKX", "SWAP", "MARGIN"),
    ],
)
async def test_okx_builds_with_a_passphrase_and_demo_trading(account_type, instrument, okx_type, booked_as):
    node, data, execution = await build("okx", account_type, instrument)
    try:
        for config in (data["OKX"], execution["OKX"]):
            assert [str(t).split(".")[-1].upper() for t in config.instrument_types] == [okx_type]
            assert config.environment == OKXEnvironment.DEMO
            assert (config.api_key, config.api_secret, config.api_passphrase) == (KEY, SECRET, PASSPHRASE)
        # In NautilusTrader 1.231 the private websockets take the config's credentials (1.221 read
        # OKX_API_* from the process environment, which livestrat exported around the build): nothing
        # is put in the environment any more.
        client = node.kernel.exec_engine._clients[next(iter(node.kernel.exec_engine._clients))]
        assert client._ws_client.api_key == client._ws_business_client.api_key == KEY
        assert not any(name in os.environ for name in OKX_VARIABLES)
        assert node.nautilus_account_type == booked_as
    finally:
        node.dispose()


def _clients(node):
    """The node's data and execution client objects (one venue: one of each)."""
    data, execution = node.kernel.data_engine, node.kernel.exec_engine
    return data._clients[data.registered_clients[0]], execution._clients[execution.registered_clients[0]]


@pytest.mark.parametrize(
    ("account_type", "instrument", "product"),
    [
        ("future", "BTC-PERPETUAL.DERIBIT", "FUTURE"),
        ("option", "BTC-27DEC24-100000-C.DERIBIT", "OPTION"),
        ("spot", "BTC_USDC.DERIBIT", "SPOT"),
        ("futureCombo", "BTC-FS-27DEC24_PERP.DERIBIT", "FUTURE_COMBO"),
        ("optionCombo", "BTC-CS-27DEC24-100000_110000.DERIBIT", "OPTION_COMBO"),
        (None, "ETH-PERPETUAL.DERIBIT", "FUTURE"),  # the default
    ],
)
async def test_deribit_builds_each_product_type_on_one_margin_account(account_type, instrument, product):
    node, data, execution = await build("deribit", account_type, instrument)
    try:
        assert [str(c) for c in node.kernel.exec_engine.registered_clients] == ["DERIBIT"]
        assert node.kernel.data_engine.registered_clients == node.kernel.exec_engine.registered_clients
        for config in (data["DERIBIT"], execution["DERIBIT"]):
            assert [p.name.upper() for p in config.product_types] == [product]
            assert config.environment.name.upper() == "TESTNET"
            assert (config.api_key, config.api_secret) == (KEY, SECRET)
            assert config.instrument_provider.load_ids == frozenset({InstrumentId.from_str(instrument)})
        data_client, exec_client = _clients(node)
        assert (type(data_client).__name__, type(exec_client).__name__) == (
            "DeribitDataClient",
            "DeribitExecutionClient",
        )
        # No DERIBIT_* variable is set: the websockets hold credentials because the configs handed them over.
        for client in (data_client, exec_client):
            assert client._ws_client.has_credentials()
            assert client._ws_client.url == "wss://test.deribit.com/ws/api/v2"
        assert node.nautilus_account_type == "MARGIN", "Deribit books every product type on a margin account"
        assert not node.notional_limit_checked_by_nautilus, "the runtime's risk guard checks the notional"
        assert node.node._config.exec_engine.reconciliation, "a live node reconciles with the venue at start"
    finally:
        node.dispose()


async def test_the_deribit_example_builds_on_the_test_environment():
    manifest = yaml.safe_load((ROOT / "examples" / "live-deribit-testnet.yaml").read_text())
    node = await build_without_connecting(live_config(manifest), FAKE_CREDENTIALS)
    try:
        data = node.node._config.data_clients["DERIBIT"]
        assert data.environment.name.upper() == "TESTNET"
        assert [p.name.upper() for p in data.product_types] == ["FUTURE"]
        assert data.instrument_provider.load_ids == frozenset({InstrumentId.from_str("BTC_USDC-PERPETUAL.DERIBIT")})
        assert [str(c) for c in node.kernel.exec_engine.registered_clients] == ["DERIBIT"]
    finally:
        node.dispose()


async def test_deribit_without_testnet_trades_on_the_real_exchange():
    node, data, execution = await build("deribit", "future", "BTC-PERPETUAL.DERIBIT", testnet=False)
    try:
        assert data["DERIBIT"].environment.name.upper() == execution["DERIBIT"].environment.name.upper() == "MAINNET"
        for client in _clients(node):
            assert client._ws_client.url == "wss://www.deribit.com/ws/api/v2"
    finally:
        node.dispose()


class _JsonRpcRecorder(BaseHTTPRequestHandler):
    """Records each JSON-RPC request (method, Authorization header) in ``server.seen``; answers an error."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((body["method"], self.headers.get("Authorization", "")))
        answer = json.dumps(
            {"jsonrpc": "2.0", "id": body["id"], "error": {"code": 13009, "message": "unauthorized"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _json_rpc_recorder():
    """A local JSON-RPC endpoint: its URL and the list of requests it saw."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonRpcRecorder)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v2", server.seen
    finally:
        server.shutdown()
        server.server_close()


async def test_deribit_signs_with_the_secret_s_key_never_with_its_own_variables(monkeypatch):
    """The private HTTP call goes to options.base_url_http, signed with the spec's key, with decoys in DERIBIT_*."""
    for name in DERIBIT_VARIABLES:
        monkeypatch.setenv(name, f"decoy-{name.lower()}")
    with _json_rpc_recorder() as (base_url, seen):
        node, _, _ = await build(
            "deribit", "future", "BTC-PERPETUAL.DERIBIT", options={"base_url_http": base_url, "max_retries": "1"}
        )
        try:
            _, exec_client = _clients(node)
            with contextlib.suppress(Exception):  # the recorder answers "unauthorized"
                await exec_client._http_client.request_account_state(exec_client.pyo3_account_id)
        finally:
            node.dispose()
    [(method, authorization)] = seen
    assert method == "private/get_account_summaries"
    assert authorization.startswith(f"deri-hmac-sha256 id={KEY},")
    assert "decoy" not in authorization


async def test_deribit_options_are_typed_for_both_clients():
    node, data, execution = await build(
        "deribit",
        "option",
        "BTC-27DEC24-100000-C.DERIBIT",
        options={"http_timeout_secs": "20", "max_retries": "5", "proxy_url": "http://egress-proxy:3128"},
    )
    try:
        for config in (data["DERIBIT"], execution["DERIBIT"]):
            assert (config.http_timeout_secs, config.max_retries) == (20, 5)
            assert config.proxy_url == "http://egress-proxy:3128"
    finally:
        node.dispose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"environment": "mainnet"}, ["environment cannot be set as an option", "spec.venue.testnet"]),
        ({"product_types": '["OPTION"]'}, ["product_types cannot be set as an option", "spec.venue.accountType"]),
        ({"base_url_ws": "ws://127.0.0.1:9/ws/api/v2"}, ["base_url_ws cannot be set", "execution client ignores it"]),
        ({"update_instruments_interval_mins": "5"}, ["cannot be set as an option", "Deribit clients ignore it"]),
        (
            {"max_retry": "5"},
            ["max_retry is not an option of the deribit adapter", "max_retries (int or null)", "base_url_http"],
        ),
        ({"http_timeout_secs": "0"}, ["http_timeout_secs: '0' is not a valid int", ">= 1"]),
    ],
)
def test_a_bad_deribit_option_says_what_is_allowed(options, expected):
    config = live_config(live_manifest("deribit", "future", "BTC-PERPETUAL.DERIBIT", options=options))
    with pytest.raises(VenueOptionError) as caught:
        live_venue(config.spec, FAKE_CREDENTIALS)
    for text in expected:
        assert text in str(caught.value)


def test_deribit_refuses_an_account_type_it_does_not_offer_naming_the_field_and_the_choices():
    manifest = live_manifest("deribit", "swap", "BTC-PERPETUAL.DERIBIT")
    # The API server (and `livestrat validate`) refuse it first...
    [problem] = problems(manifest)
    assert problem.path == "spec.venue.accountType"
    assert "deribit: future|option|spot|futureCombo|optionCombo" in problem.message
    # ...and the runtime, should such a spec reach it all the same.
    spec = LiveStrategy.model_validate(manifest).spec
    with pytest.raises(VenueConfigError) as caught:
        live_venue(spec, FAKE_CREDENTIALS)
    assert str(caught.value) == (
        "spec.venue.accountType swap is not offered by deribit (allowed: future|option|spot|futureCombo|optionCombo)"
    )


def test_every_live_adapter_has_a_builder_and_the_default_account_type_the_api_documents():
    description = Venue.model_fields["account_type"].description
    assert set(_BUILDERS) == set(DEFAULT_ACCOUNT_TYPES) == set(LIVE_ADAPTERS)
    for adapter in LIVE_ADAPTERS:
        assert DEFAULT_ACCOUNT_TYPES[adapter] in ACCOUNT_TYPES[adapter]
        assert f"{adapter} {DEFAULT_ACCOUNT_TYPES[adapter]}" in description


@pytest.mark.parametrize(("testnet", "port"), [(True, 4002), (False, 4001)])
async def test_interactive_brokers_builds_against_the_gateway(testnet, port):
    node, data, execution = await build(
        "interactive_brokers", "margin", "AAPL.NASDAQ", testnet=testnet, options={"ibg_host": "ib-gateway"}
    )
    try:
        for config in (data["INTERACTIVE_BROKERS"], execution["INTERACTIVE_BROKERS"]):
            assert (config.ibg_host, config.ibg_port) == ("ib-gateway", port)
            assert config.instrument_provider.load_ids == frozenset({InstrumentId.from_str("AAPL.NASDAQ")})
            assert config.dockerized_gateway is None
        assert execution["INTERACTIVE_BROKERS"].account_id == "DU1234567"
        assert node.nautilus_account_type == "MARGIN"
    finally:
        node.dispose()


async def test_interactive_brokers_needs_an_account_and_will_not_start_a_gateway():
    manifest = live_manifest("interactive_brokers", "margin", "AAPL.NASDAQ")
    del manifest["spec"]["venue"]["options"]
    with pytest.raises(VenueConfigError, match=r"options\.account_id"):
        live_venue(live_config(manifest).spec, FAKE_CREDENTIALS)
    with pytest.raises(VenueOptionError, match="does not start one"):
        await build("interactive_brokers", "margin", "AAPL.NASDAQ", options={"dockerized_gateway": "{}"})


async def test_options_are_typed_per_client_config():
    node, data, execution = await build(
        "binance",
        "usdtFutures",
        "BTCUSDT-PERP.BINANCE",
        options={
            "use_reduce_only": "false",
            "recv_window_ms": "7000",
            "futures_leverages": '{"BTCUSDT": 5}',
            "key_type": "ed25519",
            "update_instruments_interval_mins": "null",
        },
    )
    try:
        exe, dat = execution["BINANCE"], data["BINANCE"]
        assert exe.use_reduce_only is False and exe.recv_window_ms == 7000
        assert exe.futures_leverages == {"BTCUSDT": 5}
        assert exe.key_type.name == dat.key_type.name == "ED25519"  # an option of both configs
        assert dat.update_instruments_interval_mins is None  # an option of the data config only
    finally:
        node.dispose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"use_reduce_onyl": "false"},
            ["use_reduce_onyl is not an option of the binance adapter", "use_reduce_only (bool)"],
        ),
        ({"recv_window_ms": "0"}, ["recv_window_ms: '0' is not a valid int", ">= 1"]),
        ({"use_reduce_only": "maybe"}, ["use_reduce_only: 'maybe' is not a valid bool"]),
        ({"futures_leverages": "BTCUSDT=5"}, ["futures_leverages", "expected JSON"]),
        ({"environment": "TESTNET"}, ["environment cannot be set as an option", "spec.venue.testnet"]),
        ({"account_type": "SPOT"}, ["account_type cannot be set as an option", "spec.venue.accountType"]),
        # one name, two endpoints: the data client's market streams, the execution client's WebSocket API
        (
            {"base_url_ws": "wss://stream.example/ws"},
            ["base_url_ws cannot be set as an option", "market streams", "WebSocket API"],
        ),
    ],
)
def test_a_bad_option_says_what_is_allowed(options, expected):
    config = live_config(live_manifest("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE", options=options))
    with pytest.raises(VenueOptionError) as caught:
        live_venue(config.spec, FAKE_CREDENTIALS)
    for text in expected:
        assert text in str(caught.value)


@pytest.mark.parametrize(
    ("adapter", "account_type", "instrument", "missing"),
    [
        ("binance", "spot", "BTCUSDT.BINANCE", [ENV_API_KEY, ENV_API_SECRET]),
        ("okx", "swap", "BTC-USDT-SWAP.OKX", [ENV_API_PASSPHRASE]),
        ("deribit", "future", "BTC-PERPETUAL.DERIBIT", [ENV_API_SECRET]),
    ],
)
def test_missing_credentials_name_the_variables_and_never_a_value(adapter, account_type, instrument, missing):
    environ = {k: v for k, v in FAKE_CREDENTIALS.items() if k not in missing}
    config = live_config(live_manifest(adapter, account_type, instrument))
    with pytest.raises(VenueConfigError) as caught:
        live_venue(config.spec, environ)
    message = str(caught.value)
    assert all(name in message for name in missing)
    assert not any(value in message for value in FAKE_CREDENTIALS.values())
    assert "credentialsSecret" in message


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_credentials_never_reach_the_logs():
    """Every live adapter built at DEBUG level in its own process; the secrets are looked for in all it printed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LIVESTRAT_", "OKX_", "BINANCE_", "BYBIT_", "DERIBIT_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.live_nodes", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("BUILT ") == len(LIVE_CASES)
    assert "LIVESTRAT_VENUE_API_PASSPHRASE" in output  # the error for the missing variable was printed
    assert "[DEBUG]" in output  # the nodes really logged at DEBUG
    for value in (KEY, SECRET, PASSPHRASE):
        assert value not in output
    # No fragment of the secret or the passphrase either. The API key shows up only as
    # NautilusTrader's OKX and Deribit adapters mask it (first and last four characters).
    for value in (SECRET, PASSPHRASE):
        assert not any(piece in output for piece in fragments(value, 6))
    assert all(line.endswith(f"REST API key {KEY[:4]}...{KEY[-4:]}") for line in output.splitlines() if KEY[:4] in line)
