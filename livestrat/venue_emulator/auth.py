"""Signed requests as Binance checks them: the API key, the ``timestamp``/``recvWindow`` window, the signature.

Follows Binance's spot docs, rest-api.md "Request Security", "SIGNED Endpoint security" and "Timing
security" (the same rules hold for the WebSocket API, web-socket-api.md "SIGNED request security"):

- the key comes in ``X-MBX-APIKEY`` (REST) or ``apiKey`` (WS API). A key that is not 64 letters and
  digits answers -2014 "API-key format invalid."; a well-formed key the venue does not know, -2015.
- ``timestamp`` (milliseconds, or microseconds) is accepted when ``timestamp < serverTime + 1000`` and
  ``serverTime - timestamp <= recvWindow`` (default 5000, at most 60000); otherwise -1021.
- the signature covers the query string as sent, concatenated with the body (REST), or the parameters
  sorted by name and joined ``k=v&...`` (WS API), ``signature`` itself left out. HMAC-SHA256 hex
  signatures are not case-sensitive; Ed25519 signatures (base64) are.

How it differs from Binance: Binance holds only an Ed25519 key's public half and verifies. The
emulator is handed the private key (the same PKCS#8 text NautilusTrader's config takes) and re-signs
the payload: Ed25519 signatures are deterministic (RFC 8032, 5.1.6), so byte equality is exactly
"valid for this key", without a verifier library. RSA keys are not emulated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from nautilus_trader.core.nautilus_pyo3 import ed25519_signature

from livestrat.venue_emulator import errors

KeyType = Literal["hmac", "ed25519"]

DEFAULT_RECV_WINDOW_MS = Decimal(5000)
MAX_RECV_WINDOW_MS = 60000
_KEY_FORMAT = re.compile(r"[A-Za-z0-9]{64}")
# PKCS#8 DER prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows it.
_ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


@dataclass(frozen=True)
class ApiKey:
    """One key pair the venue accepts. ``secret`` is the HMAC secret, or the Ed25519 private key (PKCS#8,
    base64 or PEM). ``repr`` never shows the secret."""

    api_key: str
    secret: str
    key_type: KeyType = "hmac"

    def __repr__(self) -> str:
        return f"ApiKey(api_key={self.api_key[:4]}..., key_type={self.key_type})"

    def sign(self, payload: str) -> str:
        """The signature a correct client sends for ``payload``."""
        if self.key_type == "ed25519":
            return ed25519_signature(_ed25519_seed(self.secret), payload)
        return hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def verifies(self, payload: str, signature: str) -> bool:
        expected = self.sign(payload)
        if self.key_type == "hmac":
            return hmac.compare_digest(expected.lower(), signature.lower())
        return hmac.compare_digest(expected, signature)


def _ed25519_seed(secret: str) -> bytes:
    body = "".join(line for line in secret.splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)[-32:]


def ed25519_private_key_pkcs8(seed: bytes) -> str:
    """The base64 PKCS#8 text of an Ed25519 private key from its 32-byte seed (what Binance users hold)."""
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return base64.b64encode(_ED25519_PKCS8_PREFIX + seed).decode()


class Authenticator:
    """Checks signed requests against the key pairs given to the venue; the clock is injected (ms)."""

    def __init__(self, keys: list[ApiKey], now_ms: Callable[[], int]) -> None:
        self._keys = {k.api_key: k for k in keys}
        self._now_ms = now_ms

    def key(self, api_key: str | None) -> ApiKey:
        """The key named by a request, or Binance's -2014/-2015."""
        if not api_key or not _KEY_FORMAT.fullmatch(api_key):
            raise errors.bad_api_key_format()
        key = self._keys.get(api_key)
        if key is None:
            raise errors.rejected_api_key()
        return key

    def check_timing(self, params: Mapping[str, str]) -> None:
        raw_ts = params.get("timestamp")
        if not raw_ts:
            raise errors.mandatory_param("timestamp")
        try:
            timestamp = Decimal(raw_ts)
        except InvalidOperation:
            raise errors.mandatory_param("timestamp") from None
        if timestamp >= 10**15:  # microseconds (rest-api.md "General API Information")
            timestamp /= 1000
        recv_window = DEFAULT_RECV_WINDOW_MS
        if params.get("recvWindow"):
            try:
                recv_window = Decimal(params["recvWindow"])
            except InvalidOperation:
                raise errors.mandatory_param("recvWindow") from None
            if recv_window > MAX_RECV_WINDOW_MS:
                raise errors.param_too_large("recvWindow", MAX_RECV_WINDOW_MS)
        now = self._now_ms()
        if timestamp >= now + 1000:
            raise errors.timestamp_ahead()
        if now - timestamp > recv_window:
            raise errors.timestamp_outside_recv_window()

    def check_rest(self, api_key: str | None, raw_query: str, body: str, params: Mapping[str, str]) -> ApiKey:
        """A signed REST request: key (-2014/-2015), timing (-1021), then signature (-1022)."""
        key = self.key(api_key)
        self.check_timing(params)
        signature = params.get("signature")
        if not signature:
            raise errors.mandatory_param("signature")
        payload = "&".join(p for p in raw_query.split("&") if p and not p.startswith("signature=")) + body
        if not key.verifies(payload, signature):
            raise errors.invalid_signature()
        return key

    def check_ws(self, params: Mapping[str, object]) -> ApiKey:
        """A signed WS API request (its ``apiKey``/``timestamp``/``signature`` params)."""
        key = self.key(str(params.get("apiKey") or ""))
        text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        self.check_timing(text)
        signature = text.get("signature")
        if not signature:
            raise errors.mandatory_param("signature")
        payload = "&".join(f"{k}={text[k]}" for k in sorted(text) if k != "signature")
        if not key.verifies(payload, signature):
            raise errors.invalid_signature()
        return key
