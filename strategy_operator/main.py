"""``livestrat operator``: run the operator against the current cluster (in-cluster or kubeconfig).

Settings come from the environment (:mod:`strategy_operator.settings`, set by the Helm chart);
``--namespace`` (repeatable) narrows the watched namespaces, otherwise all are watched (or
those of ``LIVESTRAT_WATCH_NAMESPACES``). With ``LIVESTRAT_PEERING`` set, replicas
coordinate through kopf's peering object of that name and only one acts at a time.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from collections.abc import Sequence
from typing import Any

import kopf

from strategy_operator.handlers import build_registry
from strategy_operator.settings import OperatorSettings, SettingsError


def operator_kwargs(
    settings: OperatorSettings, namespaces: Sequence[str] = (), *, liveness_host: str = "0.0.0.0"
) -> dict[str, Any]:
    """The arguments of ``kopf.run``/``kopf.operator`` for these settings (tests use them too)."""
    namespaces = list(namespaces) or list(settings.watch_namespaces)
    peering = settings.peering
    priority = settings.priority
    if peering and priority == 0:
        # Replicas of one Deployment share their settings; equal priorities would pause them all.
        priority = random.SystemRandom().randint(1, 2**31 - 1)
    return {
        "clusterwide": not namespaces,
        "namespaces": namespaces,
        "standalone": peering is None,
        "peering_name": peering,
        "priority": priority,
        "liveness_endpoint": f"http://{liveness_host}:{settings.health_port}/healthz",
        "registry": build_registry(),
        "memo": kopf.Memo(settings=settings),
    }


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def run_operator(args: argparse.Namespace) -> int:
    try:
        settings = OperatorSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"livestrat operator: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    kwargs = operator_kwargs(settings, getattr(args, "namespace", None) or ())
    logging.getLogger("livestrat.operator").info(
        "operator: watching %s; live trading allowed in %s; %s",
        ", ".join(kwargs["namespaces"]) or "all namespaces",
        ", ".join(settings.live_namespaces) or "no namespace",
        f"peering {settings.peering!r} with priority {kwargs['priority']}" if settings.peering else "standalone",
    )
    kopf.run(**kwargs)
    return 0
