"""OKX's request signing, as the venue checks it (OKX API v5, "REST Authentication" and "WebSocket Login").

REST: the headers ``OK-ACCESS-KEY``, ``OK-ACCESS-SIGN``, ``OK-ACCESS-TIMESTAMP`` (ISO 8601 with
milliseconds, UTC) and ``OK-ACCESS-PASSPHRASE``; the signature is base64(HMAC-SHA256(secret,
timestamp + METHOD + requestPath(with its query) + body)). A timestamp more than 30 seconds from the
server's time is refused 50102 "Timestamp request expired".

WebSocket ``{"op": "login", "args": [{"apiKey", "passphrase", "timestamp", "sign"}]}``: the timestamp is
Unix seconds, the signature base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify")).

The codes are OKX's documented ones ("Error Code", REST 50xxx and WebSocket 60xxx): an unknown key
50111 / 60005, a wrong signature 50113 / 60007, a wrong passphrase 50105 / 60024, a stale timestamp
50102 / 60006, a missing header 50103/50104/50106/50107 (REST answers all of these with HTTP 401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

TIMESTAMP_WINDOW_MS = 30_000  # OKX: "the request will be considered expired if more than 30 seconds"
WS_LOGIN_PATH = "/users/self/verify"


class OkxError(Exception):
    """A refusal as OKX answers it: ``{"code": "<code>", "msg": ..., "data": []}`` (REST), the code and msg
    of a WebSocket ``error`` event, or an operation's ``sCode``/``sMsg``."""

    def __init__(self, code: str, msg: str, http_status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


@dataclass(frozen=True)
class OkxKey:
    """One API key the venue accepts; ``repr`` shows neither the secret nor the passphrase."""

    api_key: str
    secret: str
    passphrase: str

    def __repr__(self) -> str:
        return f"OkxKey(api_key={self.api_key[:4]}...)"

    def sign(self, payload: str) -> str:
        return base64.b64encode(hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()


def rest_timestamp(ms: int) -> str:
    """The ``OK-ACCESS-TIMESTAMP`` form of ``ms``: 2020-12-08T09:08:57.715Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class OkxAuthenticator:
    def __init__(self, keys: list[OkxKey], now_ms: Callable[[], int]) -> None:
        self._keys = {k.api_key: k for k in keys}
        self._now_ms = now_ms

    def check_rest(self, headers: Mapping[str, str], method: str, path_qs: str, body: str) -> OkxKey:
        """The key a signed REST request was made with, or OkxError (HTTP 401) saying what is wrong."""
        for header, code in (
            ("OK-ACCESS-KEY", "50103"),
            ("OK-ACCESS-PASSPHRASE", "50104"),
            ("OK-ACCESS-SIGN", "50106"),
            ("OK-ACCESS-TIMESTAMP", "50107"),
        ):
            if not headers.get(header):
                raise OkxError(code, f'Request header "{header}" cannot be empty.', 401)
        key = self._keys.get(headers["OK-ACCESS-KEY"])
        if key is None:
            raise OkxError("50111", "Invalid OK-ACCESS-KEY.", 401)
        stamp = headers["OK-ACCESS-TIMESTAMP"]
        try:
            stamp_ms = int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401) from None
        if abs(self._now_ms() - stamp_ms) > TIMESTAMP_WINDOW_MS:
            raise OkxError("50102", "Timestamp request expired.", 401)
        if headers["OK-ACCESS-PASSPHRASE"] != key.passphrase:
            raise OkxError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
        if not hmac.compare_digest(headers["OK-ACCESS-SIGN"], key.sign(stamp + method.upper() + path_qs + body)):
            raise OkxError("50113", "Invalid signature.", 401)
        return key

    def check_login(self, arg: Mapping[str, str]) -> OkxKey:
        """The key of a WebSocket login's argument, or OkxError with the login's error code."""
        key = self._keys.get(str(arg.get("apiKey", "")))
        if key is None:
            raise OkxError("60005", "Invalid apiKey")
        try:
            stamp_s = int(str(arg.get("timestamp", "")))
        except ValueError:
            raise OkxError("60004", "Invalid timestamp") from None
        if abs(self._now_ms() - stamp_s * 1000) > TIMESTAMP_WINDOW_MS:
            raise OkxError("60006", "Timestamp request expired")
        if arg.get("passphrase") != key.passphrase:
            raise OkxError("60024", "Wrong passphrase")
        if not hmac.compare_digest(str(arg.get("sign", "")), key.sign(f"{stamp_s}GET{WS_LOGIN_PATH}")):
            raise OkxError("60007", "Invalid sign")
        return key
