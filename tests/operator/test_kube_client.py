"""The operator's API client (strategy_operator/kube_client.py): a rotated token is taken without failing anything."""

from __future__ import annotations

import asyncio

import kopf
from aiohttp import web

from strategy_operator.kube_client import KubeClient
from strategy_operator.metrics import OperatorMetrics


async def test_a_rotated_token_fails_no_request_in_flight_on_the_old_one():
    """A projected service-account token is rotated while requests are in flight: the one answered 401 logs in again
    and is retried; the others, answered 200 on the old token, still arrive (a re-login that closed the shared
    connection pool failed them, and the reconciliations they belonged to)."""
    tokens = {"current": "old"}
    slow_started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        slow_started.set()
        await asyncio.sleep(0.3)
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "slow"}})

    async def checked(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {tokens['current']}":
            return web.json_response({"kind": "Status", "message": "Unauthorized"}, status=401)
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "checked"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/configmaps/slow", slow)
    app.router.add_get("/api/v1/namespaces/default/configmaps/checked", checked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    logins: list[str] = []

    def login() -> kopf.ConnectionInfo:
        logins.append(tokens["current"])
        return kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token=tokens["current"])

    kube = await KubeClient.connect(OperatorMetrics({}, {}), login)
    try:
        in_flight = asyncio.ensure_future(kube.get("ConfigMap", "default", "slow"))
        await slow_started.wait()
        tokens["current"] = "new"  # rotated: the next request on the old token is refused
        assert (await kube.get("ConfigMap", "default", "checked"))["metadata"]["name"] == "checked"
        assert (await in_flight)["metadata"]["name"] == "slow"
        assert logins == ["old", "new"]
    finally:
        await kube.close()
        await runner.cleanup()
