"""Looking up the Secrets a strategy pod needs, before it starts (their key names only, never a value).

A pod whose Secret is missing would sit in ``CreateContainerConfigError``; the operator looks
first and holds the pod with a message that says which Secret and key to create. A Secret
found is trusted for a while; a missing one is looked up again with back-off, so a strategy
waiting for its Secret starts soon after it is created without the operator polling hard.
"""

from __future__ import annotations

from livestrat.api.resource import LiveStrategy
from livestrat.backoff import Backoff
from strategy_operator.build.policy import SecretRequirement, SpecProblem, secret_requirements
from strategy_operator.clock import Clock
from strategy_operator.kube_client import KubeClient
from strategy_operator.memory import SecretMemory
from strategy_operator.settings import OperatorSettings

SECRETS_VALID_SECONDS = 60.0  # a found Secret is not looked up again for this long (before a pod starts)
SECRETS_REPORT_SECONDS = 300.0  # the same, for a pending configuration while the running pod stays
SECRETS_RETRY = Backoff(first=2.0, cap=30.0)  # a missing one is looked up again after these


class SecretLookup:
    def __init__(self, settings: OperatorSettings, kube: KubeClient, clock: Clock) -> None:
        self.settings = settings
        self.kube = kube
        self.clock = clock

    async def problems(
        self, strategy: LiveStrategy, memory: SecretMemory, valid_for: float = SECRETS_VALID_SECONDS
    ) -> list[SpecProblem]:
        """What is missing, from the last look-up while it is valid, else from a new one."""
        needed = tuple(secret_requirements(strategy, self.settings))
        now = self.clock.monotonic()
        if needed == memory.key:
            wait = SECRETS_RETRY.delay(memory.failures) if memory.problems else valid_for
            if now - memory.checked_at < wait:
                return memory.problems
        namespace = strategy.metadata.namespace or ""
        problems: list[SpecProblem] = []
        for requirement in needed:
            problem = await self._look_up(namespace, requirement)
            if problem is not None:
                problems.append(problem)
        memory.key, memory.checked_at, memory.problems = needed, now, problems
        memory.failures = memory.failures + 1 if problems else 0
        return problems

    async def _look_up(self, namespace: str, requirement: SecretRequirement) -> SpecProblem | None:
        secret = await self.kube.get("Secret", namespace, requirement.name)
        if secret is None:
            return SpecProblem(
                "SecretNotFound",
                f"Secret {requirement.name!r} ({requirement.purpose}) does not exist in namespace "
                f"{namespace!r}: create it (keys {', '.join(requirement.keys)}); the strategy starts "
                "by itself once it exists.",
            )
        present = set((secret.get("data") or {}).keys())
        del secret  # only the key names are kept, never a value
        missing = [key for key in requirement.keys if key not in present]
        if missing:
            return SpecProblem(
                "SecretKeyNotFound",
                f"Secret {requirement.name!r} ({requirement.purpose}) has no key "
                f"{', '.join(repr(k) for k in missing)}: add it, or point the spec at the right key.",
            )
        return None

    def recheck_after(self, memory: SecretMemory) -> float | None:
        """Seconds until a missing Secret is looked up again; None when nothing is missing."""
        if not memory.problems:
            return None
        return max(0.1, memory.checked_at + SECRETS_RETRY.delay(memory.failures) - self.clock.monotonic())
