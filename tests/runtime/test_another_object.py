"""A running pod whose LiveStrategy was deleted and applied again: the object of its name is another one.

The story of docs/operations.md ("Delete"): the finalizer is taken off by hand, the LiveStrategy goes at once, and it
is applied again while the garbage collector has not yet stopped the old pod. A real ``livestrat runtime`` process
(a paced paper replay, a market BUY of 0.01 BTC on every bar) pushes its status to the HTTP Kubernetes API emulator;
the test deletes its LiveStrategy and creates another of the same name under it.
"""

from __future__ import annotations

import pytest

from livestrat.api.runtime_config import StrategyIdentity
from tests.support.catalogs import flat, write_price_path
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.runtime_process import RuntimeProcess, paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy

pytestmark = pytest.mark.slow

NAMESPACE = "desk"
NAME = "scalper"
PACED = {"catalog": {"emptyDir": {}}, "replay": {"speed": 600}}  # a one-minute bar every 0.1 s
RUNNING = {"phase": "Running", "replicas": 1, "observedGeneration": 1}


async def test_a_pod_finding_its_name_held_by_another_object_sends_no_new_order_and_pushes_nothing_more(
    tmp_path, emulator, kubeconfig_path
):
    events = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", flat(3_000))
    spec = paper_spec(scripted_strategy(str(events), keep_trying_from=2, keep_trying_quantity="0.01"), data=PACED)
    emulator.add_namespace(NAMESPACE)
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": NAME}, "spec": spec}

    def create() -> str:
        emulator.create_object(LIVESTRATEGIES, manifest, namespace=NAMESPACE)
        emulator.patch_object(LIVESTRATEGIES, NAME, {"status": RUNNING}, namespace=NAMESPACE, subresource="status")
        return emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["metadata"]["uid"]

    def rows(kind: str) -> list[dict]:
        return [e for e in read_events(str(events)) if e.get("event") == kind] if events.exists() else []

    ours = create()
    config, path = strategy_config(
        tmp_path,
        spec,
        name=NAME,
        namespace=NAMESPACE,
        catalog=catalog,
        report_status=True,
        heartbeat_interval_seconds=2.0,
        strategy=StrategyIdentity(namespace=NAMESPACE, name=NAME, uid=ours),
    )
    runtime = RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig_path)})
    pid = runtime.process.pid
    try:
        await runtime.wait_ready()
        await wait_for(lambda: len(rows("OrderFilled")) >= 3, timeout=60)
        assert rows("OrderDenied") == []

        emulator.delete_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)  # no finalizer left: gone at once
        newer = create()
        denied = await wait_for(
            lambda: [r for r in rows("OrderDenied") if "is another object now" in (r.get("reason") or "")], timeout=30
        )
        assert f"uid {newer}" in denied[0]["reason"] and f"uid {ours}" in denied[0]["reason"]
        filled = len(rows("OrderFilled"))
        await wait_for(lambda: len(rows("OrderDenied")) >= len(denied) + 5, timeout=30)
        assert len(rows("OrderFilled")) <= filled + 1  # one already past the gate may fill; then nothing

        # What it pushed into the new object says whose it is (its readers ignore it); then it pushes nothing.
        stored = emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)
        assert stored["metadata"]["uid"] == newer
        assert (stored.get("status", {}).get("trading") or {}).get("strategyUid") in (None, ours)
        version = stored["metadata"]["resourceVersion"]
        await wait_for(lambda: len(rows("OrderDenied")) >= len(denied) + 30, timeout=30)  # several heartbeats
        assert emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["metadata"]["resourceVersion"] == version

        state = await runtime.state()
        position = state["trading"]["positions"]
        assert position and position[0]["side"] == "LONG"  # kept: nobody asked this pod to flatten
        assert runtime.process.poll() is None and runtime.process.pid == pid  # it runs until it is stopped

        runtime.signal()  # the garbage collector deletes the pod: its stop is a restart's (another object)
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()
    assert "the LiveStrategy of this name is another object" in runtime.output()
