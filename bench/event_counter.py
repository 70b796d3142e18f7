"""A stand-in for the runtime's reporting actor and risk guard in benchmarks: it sees what they will see."""

from __future__ import annotations

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig


class EventCounter(Actor):
    """Counts every order, position, account and risk event of the node."""

    def __init__(self, config: ActorConfig | None = None) -> None:
        super().__init__(config)
        self.events = 0

    def on_start(self) -> None:
        for topic in ("events.order.*", "events.position.*", "events.account.*", "events.risk"):
            self.msgbus.subscribe(topic, self._count)

    def _count(self, _event: object) -> None:
        self.events += 1
