"""A running pod whose LiveStrategy was deleted and applied again: the object of its name is another one.

The story of docs/operations.md ("Delete"): the finalizer is taken off by hand, the LiveStrategy goes at once, and it
is applied again while the garbage collector has not yet stopped the old pod. A real ``livestrat runtime`` process
(``tests.support.paced_buyer``: a market BUY of 0.01 BTC on every bar of a paced replay) pushes its status to the HTTP
Kubernetes API emulator; the test deletes its LiveStrategy and creates another of the same name under it.
"""

from __future__ import annotations

import pytest

from tests.support.catalogs import flat
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.paced_buyer import NAME, NAMESPACE, paced_buyer

pytestmark = pytest.mark.slow


async def test_a_pod_finding_its_name_held_by_another_object_sends_no_new_order_and_pushes_nothing_more(
    tmp_path, emulator, kubeconfig_path
):
    buyer = paced_buyer(tmp_path, flat(3_000))
    ours = buyer.create(emulator)
    runtime = buyer.start(tmp_path, kubeconfig_path, uid=ours)
    pid = runtime.process.pid
    try:
        await runtime.wait_ready()
        await wait_for(lambda: len(buyer.rows("OrderFilled")) >= 3, timeout=60)
        assert buyer.rows("OrderDenied") == []

        emulator.delete_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)  # no finalizer left: gone at once
        newer = buyer.create(emulator)
        denied = await wait_for(lambda: buyer.denials("is another object now"), timeout=30)
        assert f"uid {newer}" in denied[0]["reason"] and f"uid {ours}" in denied[0]["reason"]
        filled = len(buyer.rows("OrderFilled"))
        await wait_for(lambda: len(buyer.rows("OrderDenied")) >= len(denied) + 5, timeout=30)
        assert len(buyer.rows("OrderFilled")) <= filled + 1  # one already past the gate may fill; then nothing

        # What it pushed into the new object says whose it is (its readers ignore it); then it pushes nothing.
        stored = emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)
        assert stored["metadata"]["uid"] == newer
        assert (stored.get("status", {}).get("trading") or {}).get("strategyUid") in (None, ours)
        version = stored["metadata"]["resourceVersion"]
        await wait_for(lambda: len(buyer.rows("OrderDenied")) >= len(denied) + 30, timeout=30)  # several heartbeats
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
