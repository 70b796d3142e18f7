"""Signed requests checked as Binance documents it (rest-api.md "Request Security", "Timing security")."""

from __future__ import annotations

import base64

import pytest

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.auth import ApiKey, Authenticator, ed25519_private_key_pkcs8

# rest-api.md "SIGNED Endpoint Examples for POST /api/v3/order", HMAC keys: the documented pair, payload and
# signature (computed there with openssl), so the check does not rest on the emulator's own signer.
DOC_KEY = ApiKey(
    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
)
DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_NOW = 1499827319559 + 100

# RFC 8032 section 7.1, TEST 1: an Ed25519 seed, the empty message and its signature.
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
    "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def params(query: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in query.split("&"))


def check(auth: Authenticator, api_key: str | None, query: str) -> errors.BinanceError | ApiKey:
    try:
        return auth.check_rest(api_key, query, "", params(query))
    except errors.BinanceError as exc:
        return exc


def test_the_documented_hmac_example_is_accepted_and_its_case_does_not_matter():
    auth = Authenticator([DOC_KEY], lambda: DOC_NOW)
    assert check(auth, DOC_KEY.api_key, f"{DOC_QUERY}&signature={DOC_SIGNATURE}") == DOC_KEY
    assert check(auth, DOC_KEY.api_key, f"{DOC_QUERY}&signature={DOC_SIGNATURE.upper()}") == DOC_KEY


def test_a_wrong_signature_is_minus_1022():
    auth = Authenticator([DOC_KEY], lambda: DOC_NOW)
    tampered = DOC_QUERY.replace("quantity=1", "quantity=2")
    err = check(auth, DOC_KEY.api_key, f"{tampered}&signature={DOC_SIGNATURE}")
    assert isinstance(err, errors.BinanceError)
    assert (err.http_status, err.code, err.msg) == (400, -1022, "Signature for this request is not valid.")
    missing = check(auth, DOC_KEY.api_key, DOC_QUERY)
    assert isinstance(missing, errors.BinanceError) and missing.code == -1102


def test_timestamps_outside_the_window_are_minus_1021_with_binances_two_messages():
    stale = Authenticator([DOC_KEY], lambda: 1499827319559 + 5001)
    ahead = Authenticator([DOC_KEY], lambda: 1499827319559 - 1000)
    edge = Authenticator([DOC_KEY], lambda: 1499827319559 + 5000)
    query = f"{DOC_QUERY}&signature={DOC_SIGNATURE}"
    late, early = check(stale, DOC_KEY.api_key, query), check(ahead, DOC_KEY.api_key, query)
    assert isinstance(late, errors.BinanceError) and isinstance(early, errors.BinanceError)
    assert (late.code, late.msg) == (-1021, "Timestamp for this request is outside of the recvWindow.")
    assert (early.code, early.msg) == (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    assert check(edge, DOC_KEY.api_key, query) == DOC_KEY  # serverTime - timestamp <= recvWindow


def test_keys_a_malformed_one_is_minus_2014_an_unknown_one_minus_2015():
    auth = Authenticator([DOC_KEY], lambda: DOC_NOW)
    query = f"{DOC_QUERY}&signature={DOC_SIGNATURE}"
    for api_key, expected in (
        (None, (401, -2014, "API-key format invalid.")),
        ("short", (401, -2014, "API-key format invalid.")),
        ("A" * 64, (401, -2015, "Invalid API-key, IP, or permissions for action.")),
    ):
        err = check(auth, api_key, query)
        assert isinstance(err, errors.BinanceError)
        assert (err.http_status, err.code, err.msg) == expected


def test_recv_window_above_60000_is_refused():
    auth = Authenticator([DOC_KEY], lambda: DOC_NOW)
    err = check(auth, DOC_KEY.api_key, "recvWindow=60001&timestamp=1499827319559&signature=x")
    assert isinstance(err, errors.BinanceError) and err.code == -1102


def test_ed25519_signatures_are_the_rfc_8032_ones_and_case_sensitive():
    key = ApiKey("B" * 64, ed25519_private_key_pkcs8(RFC_SEED), "ed25519")
    expected = base64.b64encode(RFC_SIGNATURE).decode()
    assert key.sign("") == expected
    assert key.verifies("", expected)
    assert not key.verifies("", expected.swapcase())


def test_ws_api_params_are_signed_sorted_by_name():
    auth = Authenticator([DOC_KEY], lambda: DOC_NOW)
    signed = {"timestamp": 1499827319559, "apiKey": DOC_KEY.api_key}
    payload = f"apiKey={DOC_KEY.api_key}&timestamp=1499827319559"
    assert auth.check_ws({**signed, "signature": DOC_KEY.sign(payload)}) == DOC_KEY
    with pytest.raises(errors.BinanceError) as caught:
        auth.check_ws({**signed, "signature": DOC_SIGNATURE})
    assert caught.value.code == -1022


def test_a_key_never_shows_its_secret():
    assert DOC_KEY.secret not in repr(DOC_KEY) and DOC_KEY.secret not in str(DOC_KEY)
