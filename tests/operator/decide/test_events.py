"""Events: one per transition, computed from the old and the new status."""

from __future__ import annotations

from strategy_operator.decide.events import Event, transition_events
from tests.support.observations import status


def test_events_tell_the_story_of_the_transitions():
    running = status(phase="Running", conditions=[{"type": "Stale", "status": "False", "reason": "Fresh"}])
    stale = status(
        phase="Running",
        conditions=[{"type": "Stale", "status": "True", "reason": "HeartbeatTooOld", "message": "old"}],
    )
    assert transition_events(running, stale) == [Event("Warning", "Stale", "old")]
    assert [e.reason for e in transition_events(stale, running)] == ["HeartbeatResumed"]
    halted = status(
        phase="Halted",
        message="m",
        conditions=[{"type": "Halted", "status": "True", "reason": "KillSwitch"}],
    )
    assert [e.reason for e in transition_events(running, halted)] == ["KillSwitchHalted"]
