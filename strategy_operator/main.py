"""``livestrat operator``: run the operator against the current cluster (in-cluster or kubeconfig).

Settings come from the environment (:mod:`strategy_operator.settings`, set by the Helm chart);
``--namespace`` (repeatable) narrows the watched namespaces, otherwise all are watched (or
those of ``LIVESTRAT_WATCH_NAMESPACES``). With ``LIVESTRAT_PEERING`` set, replicas
coordinate through kopf's peering object of that name and only one acts at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import kopf
import uvloop

from livestrat.api.runtime_config import host_and_port
from strategy_operator import kopf_fixes
from strategy_operator.clock import SYSTEM_CLOCK, Clock
from strategy_operator.handlers import build_registry
from strategy_operator.kube_client import login
from strategy_operator.peering import own_identity
from strategy_operator.settings import OperatorSettings, SettingsError


class SharedMemo(kopf.Memo):
    """The operator's memo, shared by every object kopf watches instead of a shallow copy each.

    kopf copies the memo for each object it sees (``copy.copy``), so that handlers may keep per-object state in
    it; these handlers keep none (the reconciler's memory is :mod:`strategy_operator.memory`), and 9,000 copies
    at N = 1000 strategies are 1.7 MiB."""

    def __copy__(self) -> SharedMemo:
        return self


def operator_kwargs(
    settings: OperatorSettings, namespaces: Sequence[str] = (), *, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """The arguments of ``kopf.run``/``kopf.operator`` for these settings (tests use them too, with a clock
    they move)."""
    kopf_fixes.install()  # before kopf starts watching: a stop must stop every watcher
    namespaces = list(namespaces) or list(settings.watch_namespaces)
    peering = settings.peering
    identity = own_identity()  # given to kopf, so the operator tells itself from its peers (peering.py)
    return {
        "clusterwide": not namespaces,
        "namespaces": namespaces,
        "standalone": peering is None,
        "peering_name": peering,
        "priority": settings.peering_priority(),
        "identity": identity,
        "liveness_endpoint": f"http://{host_and_port(settings.http_host, settings.health_port)}/healthz",
        "registry": build_registry(),
        "memo": SharedMemo(settings=settings, clock=clock, identity=identity),
    }


# LIVESTRAT_LOG_LEVEL applies to these loggers only (the operator's own, and kopf's).
OPERATOR_LOGGERS = ("livestrat", "strategy_operator", "kopf")
# HTTP clients log request and response bodies at DEBUG (kubernetes_asyncio.client.rest logs every
# response body it preloads: a Secret's values among them). They never log below WARNING here,
# whatever the level: a DEBUG operator must not write a Secret into its log.
QUIET_LOGGERS = ("kubernetes_asyncio", "urllib3", "aiohttp", "asyncio")


def configure_logging(level: str) -> None:
    """The operator's log: ``level`` for the operator and kopf, WARNING for everything else (libraries)."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in OPERATOR_LOGGERS:
        logging.getLogger(name).setLevel(getattr(logging, level))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


NO_CLUSTER = (
    "no Kubernetes API to connect to: not in a pod (no service account token) and no kubeconfig "
    "($KUBECONFIG is not set and ~/.kube/config does not exist). Point KUBECONFIG at a cluster's kubeconfig "
    "(kind get kubeconfig --name NAME > FILE; export KUBECONFIG=FILE), or install the operator into the cluster "
    "with its Helm chart (docs/install.md)"
)


def cluster_login_problem() -> str | None:
    """Why the operator cannot log in to any cluster (None when it can try): kopf would otherwise retry its
    startup every minute, for ever, with a traceback each time. A kubeconfig that names an unreachable cluster
    is not a problem here: the cluster may come back, and kopf's retries are right for that."""
    try:
        login(kopf.OperatorSettings())
    except kopf.LoginError:
        return NO_CLUSTER
    except Exception as exc:  # kopf's reader raises OSError, PyYAML's errors, KeyError/TypeError for a wrong shape
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        why = " ".join(str(exc).split())  # one line: YAML's errors span several
        return f"cannot read the kubeconfig {where}: {why}; fix it, or point KUBECONFIG at another one"
    return None


def run_operator(args: argparse.Namespace) -> int:
    try:
        settings = OperatorSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"livestrat operator: {exc}", file=sys.stderr)
        return 2
    problem = cluster_login_problem()
    if problem is not None:
        print(f"livestrat operator: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    kwargs = operator_kwargs(settings, getattr(args, "namespace", None) or ())
    logging.getLogger("livestrat.operator").info(
        "operator: watching %s; live trading allowed in %s; %s",
        ", ".join(kwargs["namespaces"]) or "all namespaces",
        ", ".join(settings.live_namespaces) or "no namespace",
        f"peering {settings.peering!r} with priority {kwargs['priority']}" if settings.peering else "standalone",
    )
    # uvloop: the operator is a loop of watch events and HTTP calls, and spends a third less CPU on uvloop's loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        kopf.run(loop=runner.get_loop(), **kwargs)
    return 0
