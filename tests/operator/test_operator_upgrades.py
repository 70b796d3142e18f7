"""Upgrading the operator (a new version, a new default runtime image) restarts no running strategy.

A running strategy keeps the pod it has; ConfigDrift says what the operator would now build
differently, and the strategy takes the new pod at its next restart: a restartNonce, a halt and
resume, or (under Auto) a change of its own spec. A strategy without a running pod takes it at once.
"""

from __future__ import annotations

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

OLD, NEW = "livestrat-runtime:1.0", "livestrat-runtime:2.0"


def image(desk: Desk, name: str) -> str | None:
    pods = [p for p in desk.pods(name) if not p["metadata"].get("deletionTimestamp")]
    return pods[0]["spec"]["containers"][0]["image"] if pods else None


def template_image(desk: Desk, name: str) -> str:
    return desk.statefulset(name)["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_a_new_default_runtime_image_restarts_no_running_strategy_until_its_next_restart(
    emulator, desk: Desk, kubelet: Kubelet
):
    running = ("auto", "manual", "auto-edited", "manual-halted")
    async with running_operator(emulator, fast_settings(runtime_image=OLD)):
        await desk.apply(paper("auto"))
        await desk.apply(paper("manual", updatePolicy="Manual"))
        await desk.apply(paper("auto-edited"))
        await desk.apply(paper("manual-halted", updatePolicy="Manual"))
        await desk.apply(paper("halted", replicas=0))
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in running) and desk.phase("halted") == "Halted")
    started = list(kubelet.started_pods)

    # helm upgrade: the operator comes back with another default runtime image
    async with running_operator(emulator, fast_settings(runtime_image=NEW)) as operator:
        await wait_for(
            lambda: all(desk.condition(n, "ConfigDrift").get("reason") == "RuntimeImageChanged" for n in running),
            timeout=30,
        )
        await operator.processed(emulator, *running, "halted")
        assert kubelet.started_pods == started  # not one pod restarted
        for name in running:
            assert desk.phase(name) == "Running" and image(desk, name) == OLD and template_image(desk, name) == OLD
            message = desk.condition(name, "ConfigDrift")["message"]
            assert NEW in message and OLD in message and "restartNonce" in message, message
            await wait_for(lambda name=name: "ConfigDrift" in desk.events(name))
        # nothing runs: it takes the new pod template at once, quietly
        assert template_image(desk, "halted") == NEW and not desk.is_true("halted", "ConfigDrift")

        # each takes the new pod at its next restart
        await desk.edit_spec("auto", {"restartNonce": "after-upgrade"})
        await desk.edit_spec("auto-edited", {"risk": {"maxDailyLoss": 1234}})  # Auto: its own spec changed
        await desk.scale("manual-halted", 0)
        await wait_for(lambda: desk.phase("manual-halted") == "Halted", timeout=30)
        await desk.scale("manual-halted", 1)
        await desk.scale("halted", 1)
        for name in ("auto", "auto-edited", "manual-halted", "halted"):
            await wait_for(
                lambda name=name: (
                    desk.phase(name) == "Running" and image(desk, name) == NEW and not desk.is_true(name, "ConfigDrift")
                ),
                timeout=30,
            )
        # Manual, untouched, keeps its pod
        await operator.processed(emulator, "manual")
        assert image(desk, "manual") == OLD and desk.is_true("manual", "ConfigDrift")
        assert kubelet.max_running == 1
