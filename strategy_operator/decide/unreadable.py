"""An object the operator cannot read: it stops nothing that runs, starts nothing, and halts all the same.

Architecture decision 11: a running strategy stops only when asked, and halts work whatever else in
the object is broken. A LiveStrategy whose spec or metadata does not read
(:mod:`strategy_operator.observe.reading`) is therefore not acted on, its children left as they
are: a StatefulSet that runs keeps its pod, on the configuration it was started with (an edit the
operator cannot read is no request to stop: Flink's lastStableSpec), and a strategy that runs
nothing starts nothing. Halts still act: ``spec.replicas: 0`` whenever that one field reads, the
namespace's kill switch, a risk breach the operator recorded, deletion.

Whatever does not read is said once per distinct problem, never per pass: the condition
(``InvalidSpec`` with ``SpecInvalid``/``MetadataInvalid``; ``Trading`` or ``RiskHalted`` Unknown with
``StatusInvalid`` for the runtime's part of the status) and a Warning event of that reason. The
operator's own status fields that do not read are written back at once (``StatusRepaired`` event).
"""

from __future__ import annotations

from livestrat.api.status import ConditionType
from strategy_operator.decide.conditions import Verdict
from strategy_operator.observe.observation import Observation
from strategy_operator.observe.reading import Unreadable

UNREADABLE = frozenset({"SpecInvalid", "MetadataInvalid"})  # InvalidSpec reasons of an object that does not read
STATUS_INVALID = "StatusInvalid"  # the runtime's part of the status does not read
STATUS_REPAIRED = "StatusRepaired"  # the operator's part did not read, and was written back
TOLD_ONCE = UNREADABLE | {STATUS_INVALID}  # reasons told by an event once per distinct message

HALTS = (
    "Halts still act: spec.replicas 0 (kubectl patch livestrategy {name} --type merge -p "
    '\'{{"spec":{{"replicas":0}}}}\'), the namespace\'s kill switch, deletion.'
)
KEPT = "The running pod keeps the configuration it was started with."
HELD = "No pod runs until it can be read."


def keeps_running(obs: Observation) -> bool:
    """The strategy's StatefulSet runs a pod (or is starting one): a spec the operator cannot read, or refuses
    (:mod:`strategy_operator.build.policy`), leaves it on the configuration it was started with."""
    replicas = ((obs.statefulset or {}).get("spec") or {}).get("replicas")
    return isinstance(replicas, int) and replicas >= 1


def effect(obs: Observation) -> str:
    """What the operator does about an object it cannot read, in the words of its conditions."""
    kept = keeps_running(obs)
    return f"{KEPT if kept else HELD} {HALTS.format(name=obs.name)}"


def without_effect(message: str) -> str:
    """The problem a message tells, without the effect that follows it (which changes with a halt)."""
    for what in (KEPT, HELD):
        if f" {what} " in message:
            return message.split(f" {what} ")[0]
    return message


_RUNTIME_FIELD = {
    ConditionType.TRADING: (
        "trading",
        "the operator cannot read the runtime's report (fills, PnL, heartbeat, node state); the runtime writes it "
        "again with its next report",
    ),
    ConditionType.RISK_HALTED: (
        "risk",
        "the operator cannot tell whether the runtime halted on a risk breach (a breach it recorded already, "
        "annotation livestrat.io/risk-halted-at, still holds); the runtime writes it again when its risk state "
        "changes",
    ),
}


def status_verdict(obs: Observation, type: str) -> Verdict | None:
    """``Trading`` or ``RiskHalted`` Unknown when the runtime's field it tells about does not read."""
    name, consequence = _RUNTIME_FIELD[type]
    found = [u for u in obs.unreadable_status if u.part == name]
    if not found:
        return None
    return Verdict.unknown(
        type,
        STATUS_INVALID,
        f"{found[0]}: {consequence}. To clear it now: kubectl patch livestrategy {obs.name} --subresource=status "
        f'--type merge -p \'{{"status":{{"{name}":null}}}}\'.',
    )


def repaired_message(repair: Unreadable) -> str:
    return f"{repair}: it is the operator's own; written back."
