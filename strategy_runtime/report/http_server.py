"""The runtime's HTTP endpoints (aiohttp, on the node's own event loop).

- ``GET /healthz``: 200 while the process serves requests at all (its event loop turns);
  Kubernetes' liveness probe. A stuck loop answers nothing, and the kubelet restarts the pod.
- ``GET /readyz``: 200 once the node runs (clients connected, reconciled, trader started) and
  the ledger holds the strategy's fence; 503 with the reason otherwise (starting, fence lost,
  ledger writes failing for more than a few seconds, halting). A risk-halted strategy stays
  ready: it is up and reporting, just not trading.
- ``GET /metrics``: Prometheus text format (see ``strategy_runtime.report.metrics``).
- ``GET /state``: the JSON snapshot the runtime reports (``trading`` and ``risk`` as in the
  status, camelCase), plus ``strategy``, ``ledger`` and ``statusPush`` facts.

Nothing here carries a secret: the ledger is described as ``host:port/database`` only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from livestrat.api.runtime_config import host_and_port

logger = logging.getLogger("livestrat.http")


class ObservedRuntime(Protocol):
    """What the endpoints read from the runtime."""

    registry: CollectorRegistry

    def readiness(self) -> tuple[bool, str]: ...

    def state_document(self) -> Mapping[str, Any]: ...


class RuntimeHttpServer:
    def __init__(self, runtime: ObservedRuntime, host: str, port: int) -> None:
        self._runtime = runtime
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/state", self._state)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        self.port = addresses[0][1] if addresses else self._port
        logger.info("http: /healthz /readyz /metrics /state on %s", host_and_port(self._host, self.port))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, why = self._runtime.readiness()
        return web.Response(status=200 if ready else 503, text=f"{why}\n")

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._runtime.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _state(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(self._runtime.state_document(), indent=2, default=str) + "\n",
            content_type="application/json",
        )
