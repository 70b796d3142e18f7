"""``livestrat runtime --config FILE``: the strategy pod's entrypoint.

Reads the ``RuntimeConfig`` the operator rendered into the pod's ConfigMap, takes secrets
(venue credentials, the ledger DSN) from the environment only, serves ``/healthz``,
``/readyz``, ``/metrics`` and ``/state``, pushes the trading state into the LiveStrategy's
status, and runs until Kubernetes asks it to stop (SIGTERM), halting within the budget the
configuration derives from the pod's grace period.

Exit codes (docs/runtime.md, "The runtime process"): 0 after a halt, 1 when the node failed
(or the ledger could not be opened), 2 for a configuration or spec the runtime cannot run, 3
when another runtime holds the strategy's fence, 4 when the fence was lost while running
(trading stopped at once), 5 when the halt left orders open at a venue, 70 when the halt's
watchdog ended a stuck process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from livestrat.api.runtime_config import RuntimeConfig
from strategy_runtime.runtime import EXIT_INVALID, RuntimeOptions, StrategyRuntime

logger = logging.getLogger("livestrat.runtime")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("livestrat")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if level.upper() in ("DEBUG", "TRACE") else logging.INFO)
    root.propagate = False


def _problem(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        # Within an API version the operator writes a field only when a strategy uses it (RuntimeConfig.dumps):
        # this one is used, and this runtime would not honour it.
        return (
            "this runtime does not know the field: it was written by a newer operator for a newer runtime image. "
            "Run the operator's runtime image (remove spec.pod.image, or set it to the operator's version), or "
            "leave the field at its default"
        )
    return error["msg"]


def run_pod(args: argparse.Namespace) -> int:
    path = Path(args.config)
    try:
        config = RuntimeConfig.load(path)
    except OSError as exc:
        print(f"livestrat runtime: cannot read the configuration {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_INVALID
    except ValidationError as exc:
        # Field paths and messages only: the file holds no secret, but never echo input values anyway.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {_problem(e)}" for e in exc.errors())
        print(f"livestrat runtime: {path} is not a valid runtime configuration: {problems}", file=sys.stderr)
        return EXIT_INVALID
    configure_logging(config.log_level)
    logger.info(
        "runtime: starting %s (%s, %s), halt budget %.1fs",
        config.strategy.key,
        config.spec.mode,
        config.spec.venue.adapter,
        config.halt_budget_seconds,
    )
    runtime = StrategyRuntime(config, RuntimeOptions(keep_watchdog_armed=True))
    outcome = asyncio.run(runtime.run())
    runtime.disarm_watchdog()
    logger.info("runtime: exiting with code %d (%s)", outcome.exit_code, outcome.reason)
    return outcome.exit_code
