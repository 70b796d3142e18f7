"""Why a Binance execution client did not connect: the venue's answer, and the Ed25519 hint only where it applies."""

from __future__ import annotations

from nautilus_trader.adapters.binance.http.error import BinanceClientError

from strategy_runtime.live.binance import _refusal, _refused_the_key


def test_a_refused_key_is_told_apart_from_a_venue_that_cannot_be_reached():
    refused_rest = BinanceClientError(
        401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, {}
    )
    refused_logon = RuntimeError("Request session.logon failed: Signature for this request is not valid.")
    unreachable = RuntimeError("error sending request for url (https://testnet.binance.vision/api/v3/exchangeInfo)")
    other_answer = BinanceClientError(400, {"code": -1121, "msg": "Invalid symbol."}, {})
    assert _refused_the_key(refused_rest) and _refused_the_key(refused_logon)
    # a network error or another refusal says nothing of the key: no hint about its type
    assert not _refused_the_key(unreachable) and not _refused_the_key(other_answer)
    assert "check the API key and secret" in _refusal(refused_rest)
    assert "check the API key" not in _refusal(other_answer)
