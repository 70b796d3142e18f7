"""A venue emulator process on this machine, and what it says when asked: for ``livestrat rehearse`` and the tests.

``EmulatedVenue.start(...)`` runs ``livestrat venue-emulator`` (``livestrat.venue_emulator``: Binance's
public protocol, fed by a catalog) as a child process listening on 127.0.0.1 with a port of 0, and
waits for the one JSON line it prints when it is ready (its URLs). Its output goes to files in the
given directory, so a full pipe never blocks it and what it said can be read after it is gone.
The API keys it accepts are in the scenario file (``write_scenario``: created readable by its owner
only), never on its command line, where ``ps`` shows them to every user of the machine.

``venue.endpoints`` is the ready line, what ``LIVESTRAT_VENUE_ENDPOINTS`` takes
(``strategy_runtime.live.endpoints``); ``venue.admin`` asks the emulator's admin API for its own
record (trades, open orders, balances) and injects faults. ``stop()`` ends it by its PID
(SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
ADMIN_PREFIX = "/_emulator"


class EmulatorError(RuntimeError):
    """The emulator did not start, or its admin API did not answer as documented."""


def write_scenario(path: Path, scenario: Mapping[str, Any]) -> Path:
    """Write the emulator's scenario (it holds API keys) to ``path``, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(scenario, handle, indent=2, default=str)
    return path


@dataclass(frozen=True)
class EmulatorUrls:
    """The emulator's ready line: where its REST API, WebSocket API, market streams and admin API answer."""

    http: str
    ws_api: str
    ws_stream: str
    admin: str
    ws_private: str | None = None  # futures user data, when it serves it apart from the market streams
    ws_stream_usdm: str | None = None  # USD-M market streams, when served apart from spot's
    ws_api_usdm: str | None = None  # USD-M WebSocket API, when served apart from spot's
    line: str = ""

    @classmethod
    def parse(cls, line: str) -> EmulatorUrls:
        try:
            document = json.loads(line)
            return cls(
                http=document["http"],
                ws_api=document["ws_api"],
                ws_stream=document["ws_stream"],
                admin=document["admin"],
                ws_private=document.get("ws_private"),
                ws_stream_usdm=document.get("ws_stream_usdm"),
                ws_api_usdm=document.get("ws_api_usdm"),
                line=line.strip(),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EmulatorError(f"the emulator's ready line is not its URLs as JSON ({exc})") from None

    @property
    def endpoints(self) -> str:
        """The value of ``LIVESTRAT_VENUE_ENDPOINTS`` that points the Binance adapter here."""
        values = {
            "http": self.http,
            "ws_api": self.ws_api,
            "ws_stream": self.ws_stream,
            "ws_private": self.ws_private,
            "ws_stream_usdm": self.ws_stream_usdm,
            "ws_api_usdm": self.ws_api_usdm,
        }
        return json.dumps({name: url for name, url in values.items() if url})


class VenueAdmin:
    """The emulator's admin API (``/_emulator/…``): its own record of the account, and faults on demand."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith(ADMIN_PREFIX):
            self.base_url += ADMIN_PREFIX

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, f"{self.base_url}/{path.lstrip('/')}", json=body) as response,
        ):
            text = await response.text()
            if response.status >= 400:
                raise EmulatorError(f"{method} {ADMIN_PREFIX}/{path}: HTTP {response.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def get(self, path: str) -> Any:
        return await self._request("GET", path)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self._request("POST", path, body)

    async def state(self) -> dict[str, Any]:
        """Counts: trades, open orders, live user-data subscriptions (spot and USD-M)."""
        return await self.get("state")

    @staticmethod
    def _query(product: str, **more: str | None) -> str:
        fields = {"product": product if product != "spot" else None, **more}
        query = "&".join(f"{name}={value}" for name, value in fields.items() if value)
        return f"?{query}" if query else ""

    async def trades(self, symbol: str | None = None, *, product: str = "spot") -> list[dict[str, Any]]:
        """Every fill of the account (``product``: ``spot`` or ``usdm``), oldest first, as Binance's trade rows
        (``symbol``, ``id``, ...)."""
        return await self.get("trades" + self._query(product, symbol=symbol))

    async def orders(self, *, product: str = "spot") -> list[dict[str, Any]]:
        """Every order the account has had, as Binance's order rows."""
        return await self.get("orders" + self._query(product))

    async def open_orders(self, symbol: str | None = None, *, product: str = "spot") -> list[dict[str, Any]]:
        return await self.get("orders" + self._query(product, open="true", symbol=symbol))

    async def balances(self) -> dict[str, dict[str, str]]:
        """The spot account's ``asset -> {"free": ..., "locked": ...}``."""
        return await self.get("balances")

    async def positions(self) -> dict[str, Any]:
        """The USD-M account: ``{"wallet": ..., "positions": {symbol: {"amount", "entry_price", "realized"}}}``."""
        return await self.get("positions")

    async def listen_keys(self) -> list[str]:
        """Every listen key the USD-M account was issued, oldest first (bearer tokens: a log must hold none)."""
        return (await self.get("listen_keys"))["listen_keys"]

    async def fault(self, kind: str, **fields: Any) -> Any:
        """Inject one fault now (``POST /_emulator/faults``), e.g. ``fault("drop_user_stream")``,
        ``fault("rate_limit", path="/api/v3/order", count=2, retry_after_s=1)``."""
        return await self.post("faults", {"kind": kind, **fields})


@dataclass
class EmulatedVenue:
    process: subprocess.Popen[bytes]
    urls: EmulatorUrls
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def endpoints(self) -> str:
        return self.urls.endpoints

    @property
    def admin(self) -> VenueAdmin:
        return VenueAdmin(self.urls.admin)

    @classmethod
    async def start(
        cls,
        directory: Path,
        *,
        catalog: Path | str,
        instruments: Sequence[str],
        scenario: Path | None = None,
        speed: float | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = READY_TIMEOUT_SECONDS,
    ) -> EmulatedVenue:
        """Start the emulator on 127.0.0.1 (port 0) and return once it printed its URLs."""
        directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "livestrat.cli", "venue-emulator", "--catalog", str(catalog)]
        for instrument in instruments:
            command += ["--instrument", instrument]
        command += ["--port", "0"]  # it listens on 127.0.0.1 only
        if speed is not None:
            command += ["--speed", repr(speed)]
        if scenario is not None:
            command += ["--scenario", str(scenario)]
        command += list(extra_args)
        out, err = directory / "venue-emulator.stdout", directory / "venue-emulator.stderr"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
            )
        try:
            line = await _ready_line(process, out, err, timeout)
        except BaseException:
            _end(process)
            raise
        return cls(process, EmulatorUrls.parse(line), out, err)

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """End it by its PID: SIGTERM, then SIGKILL after ``grace`` seconds. Its exit code."""
        return _end(self.process, grace)

    async def stop_async(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        return await asyncio.to_thread(_end, self.process, grace)


async def _ready_line(process: subprocess.Popen[bytes], out: Path, err: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        if "\n" in text:
            return text.split("\n", 1)[0]
        if process.poll() is not None:
            raise EmulatorError(
                f"the venue emulator exited ({process.returncode}) before it was ready: "
                f"{err.read_text(errors='replace')[-2000:]}"
            )
        await asyncio.sleep(0.05)
    raise EmulatorError(f"the venue emulator printed no ready line within {timeout:.0f}s")


def _end(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> int | None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    return process.wait(timeout=grace)
