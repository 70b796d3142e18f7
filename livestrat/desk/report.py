"""``kubectl livestrat report NAME``: one strategy's diagnostic bundle, a directory (and, if asked, a .tar.gz).

What it holds, each as the API server returns it (read with the user's own rights; what the user may not read is
listed in ``README.txt`` with the reason, and the rest is still written):

- ``livestrategy.yaml``: the resource, status included;
- ``children/``: the ConfigMap (the rendered runtime configuration), StatefulSet, PodDisruptionBudget and the pod,
  all named after the strategy (what the desk role may read);
- ``events.yaml``: the Events about the strategy, its StatefulSet and its pod, oldest first;
- ``history.txt``: the status's history as the API keeps it: each condition's last transition and the halt
  record, merged with the Events in time order (Kubernetes keeps no older status than the current one);
- ``status.txt``: what ``kubectl livestrat status`` shows;
- ``logs/``: the pod's log (the last ``tail_lines`` lines) and its previous instance's, if it restarted;
- ``fills.csv``: the fills from the ledger, when a ledger DSN is given (:mod:`livestrat.desk.ledger`).

Secrets: a Secret is never read (the desk's roles cannot; this code asks for none), and everything written passes
through :mod:`livestrat.desk.redact`, so a DSN password, a token or a key written by mistake in an annotation, a
ConfigMap, an Event or a log line is replaced by ``REDACTED``. Managed fields are left out (noise).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, RenderableType

from livestrat.api import names
from livestrat.desk import cluster as api
from livestrat.desk import fleet, ledger, views
from livestrat.desk.cluster import Cluster, DeskError, Forbidden, NotFound
from livestrat.desk.redact import scrub, scrub_text

CHILDREN = (
    ("configmap", api.CONFIGMAPS),
    ("statefulset", api.STATEFULSETS),
    ("poddisruptionbudget", api.PDBS),
)


@dataclass
class Bundle:
    directory: Path
    written: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what could not be included, and why
    notes: list[str] = field(default_factory=list)  # what was left out by choice

    def write(self, relative: str, text: str) -> None:
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(scrub_text(text))  # the last line of defence: whatever reaches a file is scrubbed
        self.written.append(relative)

    def write_yaml(self, relative: str, document: Any) -> None:
        self.write(relative, yaml.safe_dump(scrub(_without_noise(document)), sort_keys=False, allow_unicode=True))


def _without_noise(document: Any) -> Any:
    if isinstance(document, Mapping):
        return {k: _without_noise(v) for k, v in document.items() if k != "managedFields"}
    if isinstance(document, list):
        return [_without_noise(item) for item in document]
    return document


async def _optional(bundle: Bundle, what: str, read: Any) -> Any:
    """The result of ``read`` (an awaitable), or None with the reason recorded in the bundle."""
    try:
        return await read
    except Forbidden as exc:
        bundle.missing.append(f"{what}: forbidden ({str(exc).splitlines()[0]})")
    except NotFound:
        bundle.missing.append(f"{what}: there is none")
    except DeskError as exc:
        bundle.missing.append(f"{what}: {exc}")
    return None


async def write_report(
    cluster: Cluster,
    namespace: str,
    name: str,
    directory: Path,
    now: datetime,
    *,
    tail_lines: int = 2000,
    ledger_dsn: tuple[str, str] | None = None,
) -> Bundle:
    body = await cluster.get_strategy(namespace, name)  # the one thing the report cannot do without
    directory.mkdir(parents=True, exist_ok=False)
    bundle = Bundle(directory)
    bundle.write_yaml("livestrategy.yaml", body)
    row = fleet.row(body, now)
    pod_name = row.status.pod_name or f"{name}{names.POD_SUFFIX}"

    for kind, resource in CHILDREN:
        child = await _optional(bundle, f"{kind} {name}", cluster.request("GET", resource.path(namespace, name)))
        if child is not None:
            bundle.write_yaml(f"children/{kind}.yaml", child)
    pod = await _optional(bundle, f"pod {pod_name}", cluster.request("GET", api.PODS.path(namespace, pod_name)))
    if pod is not None:
        bundle.write_yaml("children/pod.yaml", pod)

    events: list[dict[str, Any]] = []
    for kind, involved in (("LiveStrategy", name), ("StatefulSet", name), ("Pod", pod_name)):
        found = await _optional(bundle, f"events of {kind} {involved}", cluster.events_for(namespace, involved, kind))
        events += found or []
    events.sort(key=api._event_time)
    bundle.write_yaml("events.yaml", events)
    bundle.write("history.txt", history(row, events))
    bundle.write(
        "status.txt", _render(views.status_view(row, [e for e in events if _about(e, "LiveStrategy")], pod, now))
    )

    if pod is not None:
        log = await _optional(
            bundle, f"log of pod {pod_name}", cluster.pod_log(namespace, pod_name, tail_lines=tail_lines)
        )
        if log is not None:
            bundle.write("logs/strategy.log", log)
        restarted = any(
            int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []
        )
        if restarted:
            previous = await _optional(
                bundle,
                f"log of the previous instance of pod {pod_name}",
                cluster.pod_log(namespace, pod_name, tail_lines=tail_lines, previous=True),
            )
            if previous is not None:
                bundle.write("logs/strategy.previous.log", previous)
    else:
        bundle.missing.append(f"logs: no pod {pod_name} (phase {row.phase}): a halted strategy has none")

    if ledger_dsn is not None:
        found = await _optional(bundle, "fills from the ledger", ledger.read_fills(row, ledger_dsn))
        if found is not None:
            bundle.write("fills.csv", ledger.csv_text(found.fills))
    else:
        bundle.notes.append("fills.csv: no ledger DSN was given (--ledger-file PATH); the status counts the fills")

    bundle.write("README.txt", _readme(bundle, namespace, name, now))
    return bundle


def _about(event: Mapping[str, Any], kind: str) -> bool:
    return (event.get("involvedObject") or {}).get("kind") == kind


def history(row: fleet.StrategyRow, events: Sequence[Mapping[str, Any]]) -> str:
    """The conditions' transitions, the halt record, the risk breach and the Events, in time order."""
    entries: list[tuple[str, str]] = []
    for condition in row.conditions:
        entries.append(
            (
                condition.last_transition_time,
                f"condition {condition.type}={condition.status} ({condition.reason}) {condition.message}".rstrip(),
            )
        )
    halt = row.status.halt
    if halt is not None:
        entries.append((halt.since, f"halt record: {halt.reason} {halt.message}".rstrip()))
    risk = row.status.risk
    if risk is not None and risk.breached_at:
        entries.append((risk.breached_at, f"risk breach: {risk.breached_limit} {risk.reason or ''}".rstrip()))
    for event in events:
        when = str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")
        involved = event.get("involvedObject") or {}
        count = int(event.get("count") or 1)
        entries.append(
            (
                when,
                f"event {event.get('type')} {event.get('reason')} on {involved.get('kind')} {involved.get('name')}"
                + (f" (x{count})" if count > 1 else "")
                + f": {event.get('message') or ''}",
            )
        )
    entries.sort(key=lambda entry: fleet.parse_time(entry[0]) or datetime.min.replace(tzinfo=UTC))
    return "".join(f"{when}  {what}\n" for when, what in entries)


def _render(renderable: RenderableType) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _readme(bundle: Bundle, namespace: str, name: str, now: datetime) -> str:
    lines = [
        f"kubectl livestrat report: LiveStrategy {name} in namespace {namespace}, taken {now.isoformat()}",
        "",
        "Secrets: no Secret was read; DSN passwords, tokens and keys found anywhere are replaced by REDACTED.",
        "",
        "Files:",
        *(f"  {path}" for path in sorted(bundle.written)),
    ]
    if bundle.missing:
        lines += ["", "Not included:", *(f"  {what}" for what in bundle.missing)]
    if bundle.notes:
        lines += ["", "Left out:", *(f"  {what}" for what in bundle.notes)]
    return "\n".join(lines) + "\n"


def archive(directory: Path) -> Path:
    """``DIRECTORY.tar.gz`` of the bundle, its files under the directory's name."""
    target = directory.with_name(directory.name + ".tar.gz")
    with tarfile.open(target, "w:gz") as tar:
        tar.add(directory, arcname=directory.name)
    return target
