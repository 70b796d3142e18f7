"""Whether a stop is a halt, from the LiveStrategy the API server returns at SIGTERM (``strategy_runtime.stop_cause``).

No node here: the answers to every shape of the object, and to a read that fails or never answers.
The real processes are in tests/runtime/test_halt.py (a halt flattens, a restart and a partition do
not) and tests/operator/test_halt_record.py (the operator writes the record before the pod stops).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from strategy_runtime.stop_cause import ask_the_operator, cause_from

UID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
RECORD = {"reason": "KillSwitch", "message": "the kill switch is engaged", "since": "2026-12-06T07:00:00Z"}


def strategy(status: Any = None, **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "s", "uid": UID, **meta}}
    if status is not None:
        body["status"] = status
    return body


def test_the_operators_halt_record_is_a_halt():
    cause = cause_from(strategy({"phase": "Halting", "halt": RECORD}), UID)
    assert cause.halt and "KillSwitch" in cause.why and RECORD["since"] in cause.why


def test_a_deletion_is_a_halt_even_before_the_operator_recorded_it():
    # foreground deletion: the garbage collector may stop the pod first
    assert cause_from(strategy({"phase": "Running"}, deletionTimestamp="2026-12-06T07:00:00Z"), UID).halt


def test_no_record_is_no_halt():
    for body in (strategy(), strategy({"phase": "Running"}), strategy({"halt": None}), strategy("not an object")):
        cause = cause_from(body, UID)
        assert not cause.halt, body


def test_a_record_that_does_not_read_is_no_halt():
    for record in ({"reason": ""}, "halt", {"since": "2026-12-06T07:00:00Z"}, ["KillSwitch"]):
        assert not cause_from(strategy({"halt": record}), UID).halt, record


def test_another_object_of_the_same_name_is_no_halt():
    other = strategy({"halt": RECORD})
    other["metadata"]["uid"] = "another"
    cause = cause_from(other, UID)
    assert not cause.halt and "another object" in cause.why
    # a runtime that does not know its uid (rendered before it was stored) reads the record all the same
    assert cause_from(other, None).halt


async def test_a_read_that_fails_is_no_halt():
    async def refused() -> dict[str, Any]:
        raise RuntimeError("the API server answered 403 Forbidden: livestrategies/status is forbidden")

    cause = await ask_the_operator(refused, UID, window=0.3)
    assert not cause.halt and "403 Forbidden" in cause.why


async def test_a_read_that_never_answers_is_no_halt_once_its_time_is_up():
    async def partition() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    cause = await ask_the_operator(partition, UID, window=0.05)
    assert not cause.halt and "no answer within" in cause.why


async def test_a_read_that_answers_in_time_is_taken():
    async def answered() -> dict[str, Any]:
        return strategy({"halt": RECORD})

    assert (await ask_the_operator(answered, UID, window=1)).halt


async def test_a_read_that_fails_is_asked_again_while_its_window_lasts():
    # A loaded or restarting API server (a connection reset, a 503, the client's own request timeout): the halt
    # record is there, only its first read failed. Taking that for no halt would leave the position a halt was
    # asked to close; the cancels go on meanwhile, so asking again costs nothing but the wait.
    answers = [RuntimeError("ClientConnectionError: the connection was reset"), strategy({"halt": RECORD})]
    asked = []

    async def flaky() -> dict[str, Any]:
        asked.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cause = await ask_the_operator(flaky, UID, window=30)
    assert cause.halt and len(asked) == 2


def namespace(phase: str):
    async def read() -> dict[str, Any]:
        return {"metadata": {"name": "desk"}, "status": {"phase": phase}}

    return read


async def test_no_halt_record_in_a_namespace_being_deleted_is_a_halt():
    # kubectl delete namespace on Kubernetes 1.33+: the pod is stopped first, its LiveStrategy not being deleted yet
    # and no operator has recorded anything: the namespace says it.
    async def no_record() -> dict[str, Any]:
        return strategy({"phase": "Running"})

    cause = await ask_the_operator(no_record, UID, window=5, read_namespace=namespace("Terminating"))
    assert cause.halt and "namespace is being deleted" in cause.why


async def test_no_halt_record_in_a_namespace_that_stays_is_no_halt():
    async def no_record() -> dict[str, Any]:
        return strategy({"phase": "Running"})

    cause = await ask_the_operator(no_record, UID, window=5, read_namespace=namespace("Active"))
    assert not cause.halt and "no halt record" in cause.why


async def test_a_namespace_that_cannot_be_read_leaves_no_halt_and_says_why():
    async def no_record() -> dict[str, Any]:
        return strategy({"phase": "Running"})

    async def forbidden() -> dict[str, Any]:
        raise RuntimeError("the API server answered 403 Forbidden: namespaces is forbidden")

    cause = await ask_the_operator(no_record, UID, window=5, read_namespace=forbidden)
    assert not cause.halt and "no halt record" in cause.why and "403 Forbidden" in cause.why


async def test_the_namespace_is_not_asked_when_the_livestrategy_answers_for_itself():
    asked = []

    async def read_namespace() -> dict[str, Any]:
        asked.append(1)
        return {"status": {"phase": "Terminating"}}

    for body in (
        strategy({"halt": RECORD}),
        strategy(uid="another-uid"),
        strategy(deletionTimestamp="2026-12-07T00:00:00Z"),
    ):

        async def answered(body: dict[str, Any] = body) -> dict[str, Any]:
            return body

        await ask_the_operator(answered, UID, window=5, read_namespace=read_namespace)
    assert asked == []


async def test_the_runtime_gives_the_halt_record_the_cancel_share_of_its_halt_budget():
    # A slow API server (CI's loaded machine took over 2 s to answer) is not a partition: the runtime waits for the
    # record as long as the cancels may take, leaving the flatten the rest of its share.
    from strategy_runtime.halt import STEP_DEADLINES
    from strategy_runtime.runtime import halt_record_window

    assert halt_record_window(48.0) == 48.0 * STEP_DEADLINES["cancel"] == 12.0
    assert halt_record_window(10.0) > 2.0  # the smallest budget (a 15 s grace period) still waits longer than 2 s


async def test_a_strategy_deleted_before_its_pod_heard_of_it_is_a_halt(emulator, kubeconfig_path):
    # Deleting a LiveStrategy is a halt (architecture decision 11). Its finalizer keeps the object, being deleted,
    # until the pod is gone; but once nothing holds it (the finalizer taken off by hand while the operator was down,
    # the usual way out of a stuck deletion), the object is gone before the garbage collector stops the pod. The
    # API server's 404 is then its answer, not a failed read: no pod will ever take the position back.
    from livestrat.api.runtime_config import StrategyIdentity
    from strategy_runtime.report.status_push import KubernetesStatusApi
    from tests.support.kube import LIVESTRATEGIES

    emulator.add_namespace("desk")
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "gone"}}
    stored = emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": {}}, namespace="desk")
    uid = stored["metadata"]["uid"]
    emulator.delete_object(LIVESTRATEGIES, "gone", namespace="desk")
    api = KubernetesStatusApi(
        StrategyIdentity(namespace="desk", name="gone", uid=uid), {"KUBECONFIG": str(kubeconfig_path)}
    )
    try:
        cause = await ask_the_operator(api.read_own, uid, window=2)
    finally:
        await api.close()
    assert cause.halt, cause.why
    assert "no longer exists" in cause.why and "404" in cause.why


def test_only_a_404_naming_the_strategy_says_it_is_gone():
    # A 404 for the path or the resource type (a CRD not installed, a wrong server) says nothing of the strategy.
    from strategy_runtime.report.status_push import _names_missing

    def status(message: str, **details: str) -> str:
        return json.dumps({"kind": "Status", "reason": "NotFound", "code": 404, "message": message, "details": details})

    assert _names_missing(status('livestrategies.livestrat.io "s" not found', name="s", kind="livestrategies"), "s")
    assert not _names_missing(status("the server could not find the requested resource"), "s")
    assert not _names_missing(status('livestrategies.livestrat.io "t" not found', name="t", kind="livestrategies"), "s")
    assert not _names_missing(status('namespaces "s" not found', name="s", kind="namespaces"), "s")
    assert not _names_missing("404 page not found", "s")
