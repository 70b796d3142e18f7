"""``livestrat operator`` as a real process: the command, its settings from the environment, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.support.desk import Desk, example
from tests.support.kube import wait_for
from tests.support.operator import free_port

LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))


async def test_livestrat_operator_runs_against_a_kubeconfig_and_stops_on_sigterm(
    emulator, kube_env, desk: Desk, tmp_path
):
    health, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_env),
        "LIVESTRAT_HEALTH_PORT": str(health),
        "LIVESTRAT_METRICS_PORT": str(metrics),
        "LIVESTRAT_RUNTIME_IMAGE": "registry.example/livestrat-runtime:1.2.3",
        "LIVESTRAT_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            LIVESTRAT, "operator", "--namespace", "default", env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await desk.apply(example("halted"))
        try:
            await wait_for(lambda: desk.phase("ema-cross-halted") == "Halted", timeout=60)
        except AssertionError:
            raise AssertionError(f"the operator did not reconcile; its log:\n{log.read_text()[-3000:]}") from None
        image = desk.statefulset("ema-cross-halted")["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "registry.example/livestrat-runtime:1.2.3"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{health}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{metrics}/metrics") as response:
                assert 'livestrat_operator_strategies{phase="Halted"} 1.0' in await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 0, log.read_text()[-3000:]


async def test_livestrat_operator_refuses_bad_settings_and_names_the_variable(tmp_path):
    env = {**os.environ, "LIVESTRAT_STALE_AFTER_SECONDS": "1", "KUBECONFIG": str(tmp_path / "none")}
    process = await asyncio.create_subprocess_exec(
        LIVESTRAT, "operator", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert "LIVESTRAT_STALE_AFTER_SECONDS" in err.decode()
