"""Where a live adapter connects when it is not the venue itself: a rehearsal or a test, on this machine.

``LIVESTRAT_VENUE_ENDPOINTS`` in the runtime's environment (never the manifest, which must run
unchanged; the operator never sets it, and a pod's environment is the operator's to write) is a
JSON object of loopback URLs::

    {"http": "http://127.0.0.1:P", "ws_stream": "ws://127.0.0.1:P", "ws_api": "ws://127.0.0.1:P/ws-api/v3",
     "ws_private": "ws://127.0.0.1:P"}

``http`` is the REST API, ``ws_stream`` the market-data streams, ``ws_stream_usdm`` those of USD-M
futures when they are served apart (the emulator serves them under ``/fstream``; by default
``ws_stream``), ``ws_api`` the WebSocket API the execution client logs on to and receives its user
data from (orders go by REST), ``ws_private`` the futures user-data stream (by default the
``ws_stream`` host, as Binance's testnet serves it), ``ws_api_usdm`` the USD-M WebSocket API when
served apart (a futures client with an Ed25519 key keeps its listen key there; by default
``ws_api``). ``livestrat venue-emulator``'s ready line can be given as it is printed (its ``admin``
URL is accepted and not used).

Only the Binance adapter can be redirected: the emulator speaks Binance's protocol, and the
mapping below is onto Binance's config fields, whose data and execution configs both have a
``base_url_ws`` with different meanings (market streams, the WebSocket API). Any other adapter
with the variable set is refused. The override takes every endpoint field, and wins over
``spec.venue.options`` naming one (``base_url_*``, and ``proxy_url`` is cleared): a rehearsal
must never reach what the options name, which is the real venue or a proxy to it, while
refusing would make such a manifest impossible to rehearse unchanged.

Loopback URLs only, without a user or password in them: the execution client sends the API key
with every request, so a variable pointing elsewhere would hand the key to another host. Errors
name the variable and the field, never a value.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENV_VENUE_ENDPOINTS = "LIVESTRAT_VENUE_ENDPOINTS"

_HTTP, _WS = ("http", "https"), ("ws", "wss")
_SCHEMES = {
    "http": _HTTP,
    "ws_stream": _WS,
    "ws_stream_usdm": _WS,
    "ws_api": _WS,
    "ws_api_usdm": _WS,
    "ws_private": _WS,
    "admin": _HTTP,
}
_REQUIRED = ("http", "ws_stream", "ws_api")

# Binance's config fields, per client, and the endpoint each takes (None: cleared).
BINANCE_DATA_FIELDS = {"base_url_http": "http", "base_url_ws": "ws_stream", "proxy_url": None}
BINANCE_USDM_DATA_FIELDS = {"base_url_http": "http", "base_url_ws": "ws_stream_usdm", "proxy_url": None}
BINANCE_EXEC_FIELDS = {
    "base_url_http": "http",
    "base_url_ws": "ws_api",
    "base_url_ws_stream": "ws_private",
    "proxy_url": None,
}
BINANCE_USDM_EXEC_FIELDS = BINANCE_EXEC_FIELDS | {"base_url_ws": "ws_api_usdm"}


class EndpointsError(ValueError):
    """The override cannot be used: the message names the variable and the field, never a value."""


def _problem(field: str, url: Any) -> str | None:
    if not isinstance(url, str):
        return f"{field}: must be a URL string"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return f"{field}: is not a URL"
    schemes = _SCHEMES[field]
    if parts.scheme not in schemes:
        article = "an" if schemes == _HTTP else "a"
        return f"{field}: must be {article} {' or '.join(s + '://' for s in schemes)} URL"
    if parts.username is not None or parts.password is not None:
        return f"{field}: must not hold a user or password"
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host or "").is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return (
                f"{field}: must be a loopback address (127.0.0.1, ::1 or localhost): the override is for "
                "rehearsals and tests on this machine"
            )
    return None


@dataclass(frozen=True)
class VenueEndpoints:
    """Where the adapter's clients connect instead of the venue (see the module docstring)."""

    http: str
    ws_stream: str
    ws_api: str
    ws_private: str | None = None
    ws_stream_usdm: str | None = None
    ws_api_usdm: str | None = None

    @classmethod
    def parse(cls, text: str) -> VenueEndpoints:
        """The endpoints the variable's JSON names; EndpointsError naming what is wrong (never a value)."""
        where = f"{ENV_VENUE_ENDPOINTS} (the venue endpoints override, for rehearsals and tests only)"
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise EndpointsError(f"{where} is not JSON") from None
        if not isinstance(document, dict):
            raise EndpointsError(f"{where} must be a JSON object of URLs: {', '.join(_SCHEMES)}")
        problems = [f"{name}: not an endpoint" for name in document if name not in _SCHEMES]
        problems += [f"{name}: required" for name in _REQUIRED if name not in document]
        problems += [p for name, url in document.items() if name in _SCHEMES and (p := _problem(name, url))]
        if problems:
            raise EndpointsError(
                f"{where}: {'; '.join(problems)} (endpoints: {', '.join(_SCHEMES)}; required: {', '.join(_REQUIRED)})"
            )
        return cls(
            http=document["http"],
            ws_stream=document["ws_stream"],
            ws_api=document["ws_api"],
            ws_private=document.get("ws_private"),
            ws_stream_usdm=document.get("ws_stream_usdm"),
            ws_api_usdm=document.get("ws_api_usdm"),
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> VenueEndpoints | None:
        """The override the environment gives, or None (unset or empty: the venue's own URLs)."""
        text = environ.get(ENV_VENUE_ENDPOINTS)
        return cls.parse(text) if text else None

    def url(self, endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        if endpoint == "ws_private":
            return self.ws_private or self.ws_stream
        if endpoint == "ws_stream_usdm":
            return self.ws_stream_usdm or self.ws_stream
        if endpoint == "ws_api_usdm":
            return self.ws_api_usdm or self.ws_api
        return getattr(self, endpoint)

    def fields(self, table: Mapping[str, str | None]) -> dict[str, str | None]:
        """The config fields of ``table`` (``BINANCE_DATA_FIELDS``, ``BINANCE_EXEC_FIELDS``) set to these endpoints."""
        return {field: self.url(endpoint) for field, endpoint in table.items()}

    def to_json(self) -> str:
        """The variable's value for these endpoints (what a rehearsal hands its runtime)."""
        values = {
            "http": self.http,
            "ws_stream": self.ws_stream,
            "ws_api": self.ws_api,
            "ws_private": self.ws_private,
            "ws_stream_usdm": self.ws_stream_usdm,
            "ws_api_usdm": self.ws_api_usdm,
        }
        return json.dumps({name: url for name, url in values.items() if url})
