"""A live Binance node at log level DEBUG prints no credential, no request signature and no listen key.

A real ``livestrat runtime`` (NautilusTrader 1.231's Binance adapter, its Rust network clients) runs at DEBUG
against the venue emulator, once per market and the key each takes: spot with an Ed25519 key (the WebSocket
API's ``session.logon``, signed, then ``userDataStream.subscribe``), USD-M with an HMAC key (a listen key over
REST, ``POST /fapi/v1/listenKey``, and the private stream's URL that carries it). It connects, reconciles,
subscribes its user-data stream, buys once, is filled, and stops (SIGTERM: its stream closed, its listen key
deleted). Everything it printed (stdout and stderr: NautilusTrader's Python and Rust loggers alike) is then
searched for the API key, the secret (every line of it), a signature that is not masked (``signature=…`` in a
query, ``"signature": "…"`` in a JSON or Python mapping) and every listen key the emulator issued (a bearer
token: whoever holds one reads the account's orders and balances for its 60 minutes). Pieces of 12 characters
are searched, so a key cut or wrapped in a line still counts.

What keeps it so in 1.231: ``BinanceHttpClient`` (each request's query, a signed one's ``signature=`` with it)
held at INFO (``strategy_runtime.node.QUIET_COMPONENTS``; without it this test fails on both markets). The user-data
client logs its WebSocket API calls by method only, the stream's connection without its URL, and the listen key
never (1.231 sends no ``listenKey`` parameter to ``PUT``/``DELETE /fapi/v1/listenKey``). NautilusTrader's Rust
network clients log through pyo3, which ``LoggingConfig.use_pyo3`` (off by default, and in the runtime) leaves
unrouted; routed, they log "Connecting" without a URL (tried by hand with 1.231).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

import pytest

from strategy_runtime.local.rehearse import EmulatorKeys
from tests.support.live_runtime import SPOT, LiveStory, live_catalog, story_spec
from tests.support.scripted import scripted_strategy
from tests.support.secrets import fragments
from tests.support.venue_emulator_process import HMAC_KEYS, KEYS, scenario, venue_emulator

pytestmark = pytest.mark.slow

SPEED = 120  # two one-minute bars a wall second
PIECE = 12  # a piece of a secret this long, found anywhere, is a leak
# A signature in a query (``&signature=…``) or in a JSON / Python mapping (``"signature":"…"``), unless masked.
SIGNATURE = re.compile(r"""signature=(?!\*\*\*)|["']signature["']\s*:\s*["'](?!\*\*\*)""")


@dataclass(frozen=True)
class Market:
    product: str  # the emulator's account
    instrument: str
    keys: EmulatorKeys
    balances: dict[str, str]
    account_type: str  # spec.venue.accountType
    user_stream: str  # the key in the emulator's /state counting the live user-data streams
    evidence: tuple[str, ...]  # what the adapter logs as it signs in and its user-data stream comes up


MARKETS = [
    Market(
        "spot", SPOT, KEYS, {"USDT": "1000000", "BTC": "100"}, "spot", "user_stream_subscriptions",
        ("method=session.logon", "Session authenticated", "Subscribed to user data stream"),
    ),
    Market(
        "usdm", "BTCUSDT-PERP.BINANCE", HMAC_KEYS, {"USDT": "1000000"}, "usdtFutures", "usdm_private_streams",
        ("Created listenKey (REST)", "Connecting to Binance Futures user data stream",
         "Connected to Binance Futures user data stream", "Closed user data stream (REST)"),
    ),
]  # fmt: skip


def pieces(secret: str) -> set[str]:
    """Every piece of ``PIECE`` characters of each line of ``secret`` (a PEM's body lines, not its armour)."""
    lines = [line.strip() for line in secret.splitlines() if line.strip() and not line.startswith("-----")]
    return set().union(*(fragments(line, PIECE) for line in lines))


def found(secret: str, text: str) -> list[str]:
    """The lines of ``text`` holding a piece of ``secret``, the secret itself masked (for the failure's message)."""
    own = pieces(secret)
    hits = [line for line in text.splitlines() if any(piece in line for piece in own)]
    return [re.sub("|".join(map(re.escape, sorted(own, key=len, reverse=True))), "<SECRET>", h)[:300] for h in hits]


@pytest.mark.parametrize("market", MARKETS, ids=lambda m: m.product)
async def test_a_live_node_at_debug_connects_trades_and_logs_no_key_secret_signature_or_listen_key(
    tmp_path, pg_database, market: Market
):
    catalog = live_catalog(tmp_path / "catalog", market.instrument)
    steps = [{"bar": 1, "do": "market", "side": "BUY", "quantity": "0.01", "tag": "once"}]
    strategy = scripted_strategy(str(tmp_path / "events.jsonl"), market.instrument, steps=steps)
    spec = story_spec(strategy, market.instrument)
    spec["venue"] = spec["venue"] | {"accountType": market.account_type}
    venue_scenario = scenario(market.balances, keys=market.keys, product=market.product)
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[market.instrument], scenario=venue_scenario, speed=SPEED
    ) as venue:
        story = LiveStory.of(
            tmp_path, venue, pg_database, spec, keys=market.keys, product=market.product, log_level="DEBUG"
        )
        try:
            runtime = story.start()
            await runtime.wait_ready(timeout=90)
            state = await runtime.wait_until(lambda s: s["trading"]["fills"] >= 1, timeout=90, what="the buy filled")
            venue_state = await venue.admin.state()
            trades = await venue.admin.trades(product=market.product)
            runtime.signal(signal.SIGTERM)  # a stop that is no halt: the stream closed, the listen key deleted
            code, _ = await runtime.wait_exit(timeout=story.config.halt_budget_seconds + 10)
            listen_keys = await venue.admin.listen_keys() if market.product == "usdm" else []
        finally:
            story.kill_all()
    output = runtime.output()
    print(
        f"{market.product} at DEBUG: {len(output.splitlines())} lines printed ({output.count('[DEBUG]')} DEBUG), "
        f"fills {state['trading']['fills']}, venue trades {len(trades)}, user-data streams {venue_state[market.user_stream]}, "
        f"listen keys issued {len(listen_keys)}, exit {code}"
    )
    # the story ran: DEBUG on, the node connected, reconciled, subscribed its user-data stream and was filled
    assert code == 0, output[-3000:]
    assert output.count("[DEBUG]") > 100, "the node did not log at DEBUG"
    assert "Reconciliation for BINANCE succeeded" in output
    assert [line for line in market.evidence if line not in output] == []
    assert venue_state[market.user_stream] >= 1 and len(trades) >= 1
    assert state["trading"]["fills"] >= 1
    assert bool(listen_keys) == (market.product == "usdm"), "USD-M with an HMAC key takes a listen key over REST"

    leaks = {
        "the API key": found(market.keys.api_key, output),
        "the API secret": found(market.keys.api_secret, output),
        **{f"listen key #{i + 1}": found(key, output) for i, key in enumerate(listen_keys)},
        "a signature": [line[:300] for line in output.splitlines() if SIGNATURE.search(line)],  # test keys' only
    }
    assert not any(leaks.values()), f"leaked at DEBUG: { {what: lines for what, lines in leaks.items() if lines} }"
