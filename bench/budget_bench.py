"""RiskBudget benchmark: from an aggregate breach to every member halted, over N trials.

    .venv/bin/python bench/budget_bench.py                    # 3 and 10 members, 30 trials each
    .venv/bin/python bench/budget_bench.py --members 3 --trials 50

A real ``livestrat operator`` process against the API emulator; the stand-in kubelet (imaginary pods,
ready at once) and the members' "runtimes" (status pushes, as ``livestrat runtime`` makes them) run in
this process. Each trial: every member reports within the budget (HaltAll, maxGrossExposure), then one
member's report takes the members' sum over the limit, at t0. Measured from t0:

- **marked**: every member carries the budget's halt (``livestrat.io/budget-halt.NAME``): the budget's decision;
- **scaled**: every member's StatefulSet is at 0 replicas: each member's own reconciler acted (its pod is told
  to stop; the runtime then halts as on its own risk breach);
- **halted**: every member's phase is RiskHalted (its pod is gone; the stand-in kubelet polls every 0.1 s).

Then the breach is acknowledged and every member resumes before the next trial.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import kmock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_header  # noqa: E402
from livestrat.api.contract import BUDGET_HALT_PREFIX, RISK_ACK_ANNOTATION  # noqa: E402
from livestrat.api.crd import build_budget_crd, build_crd  # noqa: E402
from tests.support.desk import now_text, paper  # noqa: E402
from tests.support.kube_emulator import KubernetesEmulator, kubeconfig  # noqa: E402
from tests.support.kubelet import Kubelet  # noqa: E402
from tests.support.operator import free_port, is_operator_request  # noqa: E402

LS = "livestrat.io/v1alpha1/livestrategies"
RB = "livestrat.io/v1alpha1/riskbudgets"
STS = "apps/v1/statefulsets"
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))
BUDGET = "account"
LIMIT = 1000.0


async def until(predicate, timeout: float, interval: float = 0.002) -> float:
    """Seconds until ``predicate()`` holds (polled every ``interval``)."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{predicate} did not hold within {timeout}s")
        await asyncio.sleep(interval)
    return time.perf_counter() - start


def push(emulator: KubernetesEmulator, name: str, notional: float) -> None:
    """What a member's runtime patches into its status: one BTC position of this notional."""
    positions = (
        [{"instrument": "BTCUSDT.BINANCE", "side": "LONG", "quantity": "0.01", "notional": f"{notional:.2f} USDT"}]
        if notional
        else []
    )
    trading = {"nodeState": "Running", "heartbeat": now_text(), "positions": positions, "openOrders": 0}
    risk = {"state": "Active", "dailyPnl": "0.00 USDT", "drawdown": "0.00 USDT"}
    emulator.patch_object(
        LS, name, {"status": {"trading": trading, "risk": risk}}, namespace="default", subresource="status"
    )


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * at(0.99), 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


async def run(members: int, trials: int) -> dict:
    names = [f"member-{i}" for i in range(members)]
    async with KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
        emulator.add_crd(build_crd())
        emulator.add_crd(build_budget_crd())
        workdir = Path(tempfile.mkdtemp(prefix="budget-bench-"))
        config = workdir / "kubeconfig.json"
        config.write_text(json.dumps(kubeconfig(str(server.url))))
        env = {
            **os.environ,
            "KUBECONFIG": str(config),
            "LIVESTRAT_METRICS_PORT": str(free_port()),
            "LIVESTRAT_HEALTH_PORT": str(free_port()),
            "LIVESTRAT_LOG_LEVEL": "WARNING",
        }
        log = (workdir / "operator.log").open("wb")
        operator = await asyncio.create_subprocess_exec(
            *f"{LIVESTRAT} operator".split(), env=env, stdout=log, stderr=log
        )

        def obj(resource: str, name: str) -> dict:
            return emulator.read_object(resource, name, namespace="default") or {}

        def phases(phase: str) -> bool:
            return all((obj(LS, n).get("status") or {}).get("phase") == phase for n in names)

        def marked() -> bool:
            return all(BUDGET_HALT_PREFIX + BUDGET in (obj(LS, n)["metadata"].get("annotations") or {}) for n in names)

        def scaled() -> bool:
            return all(obj(STS, n).get("spec", {}).get("replicas") == 0 for n in names)

        def budget_state() -> str | None:
            return (obj(RB, BUDGET).get("status") or {}).get("state")

        results: dict[str, list[float]] = {"marked": [], "scaled": [], "halted": []}
        async with Kubelet(emulator, workdir=workdir, interval=0.1, ready_delay=0.0):
            try:
                await until(lambda: any(r.action == kmock.action.WATCH for r in emulator if is_operator_request(r)), 60)
                for name in names:
                    emulator.create_object(LS, paper(name), namespace="default")
                await until(lambda: phases("Running"), 120, 0.05)
                budget = {
                    "apiVersion": "livestrat.io/v1alpha1",
                    "kind": "RiskBudget",
                    "metadata": {"name": BUDGET},
                    "spec": {"members": names, "currency": "USDT", "limits": {"maxGrossExposure": LIMIT}},
                }
                emulator.create_object(RB, budget, namespace="default")
                share = LIMIT / members / 2  # together at half the limit
                for _ in range(trials):
                    for name in names:
                        push(emulator, name, share)
                    await until(lambda: budget_state() == "Active" and phases("Running"), 60, 0.01)
                    await asyncio.sleep(0.2)  # at rest before the breach
                    t0 = time.perf_counter()
                    push(emulator, names[0], LIMIT)  # the sum is over the limit; no member alone is
                    await until(marked, 30)
                    results["marked"].append(time.perf_counter() - t0)
                    await until(scaled, 30)
                    results["scaled"].append(time.perf_counter() - t0)
                    await until(lambda: phases("RiskHalted"), 30)
                    results["halted"].append(time.perf_counter() - t0)
                    for name in names:
                        push(emulator, name, 0)
                    await until(lambda: obj(RB, BUDGET)["status"].get("exposure") == "0.00 USDT", 30, 0.01)
                    at = obj(RB, BUDGET)["status"]["breach"]["breachedAt"]
                    emulator.patch_object(
                        RB, BUDGET, {"metadata": {"annotations": {RISK_ACK_ANNOTATION: at}}}, namespace="default"
                    )
                    await until(lambda: phases("Running"), 60, 0.01)
            finally:
                operator.terminate()
                await operator.wait()
                log.close()
    return {"members": members, "trials": trials, **{k: percentiles(v) for k, v in results.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    print("\n".join(machine_header("RiskBudget benchmark: aggregate breach to every member halted")))
    for members in args.members:
        print(json.dumps(asyncio.run(run(members, args.trials)), indent=1), flush=True)


if __name__ == "__main__":
    main()
