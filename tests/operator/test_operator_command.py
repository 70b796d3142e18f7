"""``livestrat operator`` as a real process: the command, its settings from the environment, signals."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example, paper
from tests.support.kube import wait_for
from tests.support.operator import free_port, operator_writes

LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))


async def start_operator(kubeconfig: Path, log: Path, *args: str, **settings: str) -> asyncio.subprocess.Process:
    """``livestrat operator ARGS`` as a process, with these LIVESTRAT_* settings, its output into ``log``."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), **settings}
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            LIVESTRAT, "operator", *args, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )


async def test_livestrat_operator_runs_against_a_kubeconfig_and_stops_on_sigterm(
    emulator, kube_env, desk: Desk, tmp_path
):
    health, metrics = free_port(), free_port()
    log = tmp_path / "operator.log"
    process = await start_operator(
        kube_env,
        log,
        "--namespace",
        "default",
        LIVESTRAT_HEALTH_PORT=str(health),
        LIVESTRAT_METRICS_PORT=str(metrics),
        LIVESTRAT_HTTP_HOST="::1",  # both servers listen there, and only there
        LIVESTRAT_RUNTIME_IMAGE="registry.example/livestrat-runtime:1.2.3",
        LIVESTRAT_LOG_LEVEL="INFO",
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
            async with session.get(f"http://[::1]:{health}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://[::1]:{metrics}/metrics") as response:
                assert 'livestrat_operator_strategies{phase="Halted"} 1.0' in await response.text()
            for port in (health, metrics):
                with pytest.raises(aiohttp.ClientConnectorError):
                    await session.get(f"http://127.0.0.1:{port}/")
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 0, log.read_text()[-3000:]


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
async def test_livestrat_operator_refuses_bad_settings_and_names_the_variable(tmp_path):
    env = {**os.environ, "LIVESTRAT_STALE_AFTER_SECONDS": "1", "KUBECONFIG": str(tmp_path / "none")}
    process = await asyncio.create_subprocess_exec(
        LIVESTRAT, "operator", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert "LIVESTRAT_STALE_AFTER_SECONDS" in err.decode()


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
async def test_livestrat_operator_imports_no_kubernetes_client_library(tmp_path):
    """kopf imports kubernetes_asyncio's 80 MiB of generated models whenever it is installed (as it is in a virtualenv
    that also carries the runtime); the operator uses none of it. Every module the command imports, as Python lists
    it holds after the command ran up to the settings check (kopf and the operator's modules imported by then)."""
    env = {**os.environ, "LIVESTRAT_STALE_AFTER_SECONDS": "1", "KUBECONFIG": str(tmp_path / "none")}
    code = (
        "import json, sys; from livestrat.cli import main; code = main(['operator']); "
        "print(json.dumps([name for name, module in sys.modules.items() if module is not None])); sys.exit(code)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2, err.decode()[-2000:]
    imported = json.loads(out)
    assert "kopf" in imported and "strategy_operator.handlers" in imported
    clients = [name for name in imported if name.split(".")[0] in ("kubernetes", "kubernetes_asyncio", "pykube")]
    assert clients == []


def test_debug_logging_is_the_operators_own_never_the_http_clients():
    """kubernetes_asyncio logs every response body it preloads at DEBUG (a Secret's values among them)."""
    import logging

    from strategy_operator.main import configure_logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in LOGGERS})
    try:
        root.handlers[:] = []  # as in a fresh process (pytest's own handlers would make basicConfig a no-op)
        configure_logging("DEBUG")
        assert logging.getLogger("livestrat.operator").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("kopf.objects").isEnabledFor(logging.DEBUG)
        for name in ("kubernetes_asyncio.client.rest", "urllib3.connectionpool", "aiohttp.client", "some.library"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


LOGGERS = ("livestrat", "strategy_operator", "kopf", "kubernetes_asyncio", "urllib3", "aiohttp", "asyncio")
# Distinctive values: found anywhere, they leaked (raw, or base64 as the API carries them).
CANARIES = {
    "dsn": "postgresql://trader:Qm7-canary-Vx2p-9LkT@db.internal:5432/ledger",
    "api-key": "AKIA-canary-key-7fd03b1e",
    "api-secret": "canary-secret-0c4e8d9a71b2f356",
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_an_operator_logging_at_debug_writes_no_secret_anywhere(emulator, kube_env, desk: Desk, tmp_path):
    emulator.add_namespace("live-desk")
    live = desk.in_namespace("live-desk")
    for where in (desk, live):
        emulator.create_object(
            "v1/secrets",
            {"metadata": {"name": "ledger-dsn"}, "data": {"dsn": _b64(CANARIES["dsn"])}},
            namespace=where.namespace,
        )
        emulator.create_object(
            "v1/secrets",
            {
                "metadata": {"name": "binance-testnet"},
                "data": {"api-key": _b64(CANARIES["api-key"]), "api-secret": _b64(CANARIES["api-secret"])},
            },
            namespace=where.namespace,
        )
    log = tmp_path / "operator.log"
    live_example = example("live-binance-testnet")
    name = live_example["metadata"]["name"]
    process = await start_operator(
        kube_env,
        log,
        LIVESTRAT_HEALTH_PORT=str(free_port()),
        LIVESTRAT_METRICS_PORT=str(free_port()),
        LIVESTRAT_LOG_LEVEL="DEBUG",
        LIVESTRAT_LIVE_NAMESPACES="live-desk",
    )
    try:
        async with Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env):
            await live.apply(live_example)  # runs: both Secrets read
            await desk.apply(live_example)  # live trading not allowed here: Invalid
            await desk.apply(paper("paper-ledger", ledger={"dsnSecret": {"name": "ledger-dsn", "key": "dsn"}}))
            await desk.apply(paper("wrong-key", ledger={"dsnSecret": {"name": "ledger-dsn", "key": "url"}}))
            try:
                await wait_for(
                    lambda: (
                        live.phase(name) == "Running"
                        and desk.phase(name) == "Invalid"
                        and desk.phase("paper-ledger") == "Running"
                        and desk.phase("wrong-key") == "Pending"
                    ),
                    timeout=60,
                )
            except AssertionError:
                raise AssertionError(f"the operator did not get there; its log:\n{log.read_text()[-3000:]}") from None
            await wait_for(lambda: "SecretKeyNotFound" in desk.events("wrong-key"), timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)

    logged = log.read_text()
    assert "DEBUG" in logged  # it did log at DEBUG
    written = [
        json.dumps(r.data) if not isinstance(r.data, bytes | str) else str(r.data) for r in operator_writes(emulator)
    ]
    stored = [
        json.dumps(obj)
        for resource in ("v1/configmaps", "apps/v1/statefulsets", "v1/events", "livestrat.io/v1alpha1/livestrategies")
        for namespace in ("default", "live-desk")
        for obj in emulator.list_objects(resource, namespace)
    ]
    assert written and stored
    for key, value in CANARIES.items():
        for needle in (value, _b64(value)):
            assert needle not in logged, f"the {key} Secret value is in the operator's log"
            assert not [w for w in written if needle in w], f"the {key} Secret value was sent in a write"
            assert not [s for s in stored if needle in s], f"the {key} Secret value is in an object"


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
@pytest.mark.parametrize("kubeconfig", ["none set", "missing", "not YAML"])
async def test_livestrat_operator_without_a_cluster_exits_with_what_to_do_instead_of_retrying(tmp_path, kubeconfig):
    # a newcomer's laptop: not in a pod, no ~/.kube/config; KUBECONFIG unset, naming no file, or naming garbage
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(tmp_path)
    if kubeconfig == "missing":
        env["KUBECONFIG"] = str(tmp_path / "kubeconfig")
    elif kubeconfig == "not YAML":
        env["KUBECONFIG"] = str(tmp_path / "kubeconfig")
        (tmp_path / "kubeconfig").write_text("clusters: [\n")
    process = await asyncio.create_subprocess_exec(
        LIVESTRAT, "operator", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "Traceback" not in err.decode(), err.decode()[-2000:]
    if kubeconfig == "none set":
        assert "no kubeconfig ($KUBECONFIG is not set and ~/.kube/config does not exist)" in lines[0]
        assert "Point KUBECONFIG at a cluster's kubeconfig" in lines[0] and "Helm chart" in lines[0]
    else:
        assert f"cannot read the kubeconfig {tmp_path / 'kubeconfig'}" in lines[0]
        assert "point KUBECONFIG at another one" in lines[0]
