"""``kubectl livestrat``: the desk's kubectl plugin (the executable ``kubectl-livestrat``; docs/desk.md).

kubectl runs ``kubectl-livestrat`` from the PATH with the words after ``kubectl livestrat``; it passes none of its own
flags, so the plugin takes kubectl's: ``--kubeconfig``, ``--context``, ``-n/--namespace``, ``-A/--all-namespaces``,
before or after the verb. It talks to the API with the user's kubeconfig and rights (:mod:`livestrat.desk.cluster`).

Verbs: ``list``, ``top``, ``budgets``, ``status``, ``halt``, ``resume``, ``ack-risk``, ``promote``, ``kill-switch``,
``fills``, ``report``, ``logs``. An action prints what it will do, asks (unless ``--yes``), and prints what it did.
Exit codes: 0 done; 1 the cluster refused or something is wrong (the message says what to do); 2 bad usage;
3 an action not confirmed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, RenderableType

from livestrat.api import names
from livestrat.api.twin import twin_name
from livestrat.arguments import SecretSafeParser
from livestrat.desk import actions, budget_views, budgets, fleet, ledger, promotion, views
from livestrat.desk.cluster import LIVESTRATEGIES, PODS, Cluster, DeskError, NotFound
from livestrat.desk.redact import scrub_text
from livestrat.desk.report import archive, write_report
from livestrat.desk.twins import TwinComparison, find_twin

NOT_CONFIRMED = 3
LAST_FILLS = 5  # status --ledger-file shows this many of the latest fills


def _now() -> datetime:
    return datetime.now(UTC)


def _console() -> Console:
    # A pipe has no width: kubectl's users read wide tables in terminals, and a file gets the whole line.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 200)
    return Console(width=width, soft_wrap=False, highlight=False)


# ------------------------------------------------------------------------------------------------ arguments


def _connection_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=default, help="kubeconfig context (default: the current one)")
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", default=default, help="every namespace (list, top, budgets)"
    )


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sort", default=None, choices=sorted(fleet.SORTS), help="order of the rows")
    parser.add_argument("--mode", help="only this mode (paper, live)")
    parser.add_argument("--phase", help="only this phase (Running, Halted, RiskHalted, ...)")
    parser.add_argument("--risk", help="only this risk state (Active, Reducing, Halted)")


def _output(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument("-o", "--output", choices=choices, default=None, help="output format (default: a table)")


def _confirm(parser: argparse.ArgumentParser, wait: bool = True) -> None:
    parser.add_argument("-y", "--yes", action="store_true", help="do it without asking")
    if wait:
        parser.add_argument("--wait", action="store_true", help="then wait until the strategy's phase settles")
        parser.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits (default 300)")


def _ledger_file(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--ledger-file", type=Path, metavar="PATH", help=f"{text}; never a DSN on the command line")


def parser() -> argparse.ArgumentParser:
    main = SecretSafeParser(
        prog="kubectl livestrat",
        description="The trading desk's view of LiveStrategies, and its actions on them (docs/desk.md).",
    )
    _connection_options(main, None)
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)  # after the verb too, as kubectl takes them
    verbs = main.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, parents=[common], help=text, description=text)

    p = verb("list", "Every strategy (of the namespace, or -A all), with totals per currency")
    _filters(p)
    _output(p, ("json", "yaml", "wide"))
    p.set_defaults(run=_list)

    p = verb("top", "The fleet sorted by risk closeness (or --sort pnl), refreshed with --watch")
    _filters(p)
    p.add_argument("-w", "--watch", action="store_true", help="redraw on every change until Ctrl-C")
    p.add_argument("--limit", type=int, default=None, help="show only the first N rows")
    p.set_defaults(run=_top)

    p = verb("budgets", "Every RiskBudget (of the namespace, or -A all); with NAME, one budget and its members")
    p.add_argument("name", metavar="NAME", nargs="?", default=None)
    _output(p, ("json", "yaml"))
    p.set_defaults(run=_budgets)

    p = verb("status", "One strategy: phase, conditions, trading, PnL, risk limits, fills, events, pod")
    p.add_argument("name", metavar="NAME")
    _output(p, ("json", "yaml"))
    _ledger_file(p, "also show its last fills from the ledger, whose PostgreSQL DSN is in PATH")
    p.set_defaults(run=_status)

    p = verb("halt", "Halt a strategy: scale it to 0 (or, with --note, the desk's halt annotation)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--note", help="halt with the annotation livestrat.io/halt=NOTE (say who and why; GitOps-proof)")
    _confirm(p)
    p.set_defaults(run=_act, action=lambda c, ns, a: actions.halt(c, ns, a.name, note=a.note))

    p = verb("resume", "Resume a strategy: remove the halt annotation, scale it to 1")
    p.add_argument("name", metavar="NAME")
    _confirm(p)
    p.set_defaults(run=_act, action=lambda c, ns, a: actions.resume(c, ns, a.name))

    p = verb("ack-risk", "Acknowledge the risk breach that holds a strategy halted")
    p.add_argument("name", metavar="NAME")
    _confirm(p)
    p.set_defaults(run=_act, action=lambda c, ns, a: actions.ack_risk(c, ns, a.name))

    p = verb("promote", "Ask the operator to run a live strategy on a paper strategy's track record")
    p.add_argument("paper", metavar="PAPER", help="the paper LiveStrategy whose track record admits the live one")
    p.add_argument("--to", required=True, metavar="LIVE", dest="name", help="the live LiveStrategy")
    p.add_argument(
        "-f", "--filename", type=Path, default=None, help="the live strategy's manifest (needed to create it)"
    )
    _confirm(p, wait=False)
    p.set_defaults(run=_act, action=_promote)

    p = verb("kill-switch", "Halt every strategy of the namespace (on), or lift the switch (off)")
    p.add_argument("state", choices=("on", "off"))
    _confirm(p, wait=False)
    p.set_defaults(run=_act, action=lambda c, ns, a: actions.kill_switch(c, ns, a.state == "on"))

    p = verb("fills", "A strategy's fills from its ledger (PostgreSQL: the DSN in --ledger-file)")
    p.add_argument("name", metavar="NAME")
    _ledger_file(p, "a file holding the ledger's PostgreSQL DSN (default: $LIVESTRAT_LEDGER_DSN)")
    p.add_argument("-o", "--output", choices=("csv", "json"), default=None, help="output format (default: a table)")
    p.add_argument("--last", type=int, default=None, help="only the last N fills")
    p.set_defaults(run=_fills)

    p = verb("report", "A diagnostic bundle of one strategy, every secret redacted")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--dir", type=Path, default=None, help="where to write it (default: ./livestrat-report-NS-NAME-TIME)"
    )
    p.add_argument("--tar", action="store_true", help="also pack it as DIR.tar.gz")
    p.add_argument("--tail-lines", type=int, default=2000, help="lines of the pod's log to include (default 2000)")
    _ledger_file(p, "also include its fills (fills.csv) from the ledger, whose PostgreSQL DSN is in PATH")
    p.set_defaults(run=_report)

    p = verb("logs", "The strategy pod's log")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the container ends")
    p.add_argument("--tail", type=int, default=None, help="only the last N lines")
    p.add_argument("--since", type=int, default=None, metavar="SECONDS", help="only lines of the last N seconds")
    p.add_argument("-p", "--previous", action="store_true", help="the log of the instance before the last restart")
    p.set_defaults(run=_logs)

    p = verb("desk", "The live dashboard of the fleet: redraws on every change; h/r/a halt, resume, ack-risk")
    p.set_defaults(run=_desk)
    return main


# ------------------------------------------------------------------------------------------------ verbs


async def _desk(args: argparse.Namespace) -> int:
    """``livestrat desk`` (docs/dashboard.md), with the same connection options; Textual comes with the desk extra."""
    from livestrat.cli import DESK_EXTRA_MISSING, desk_extra_missing

    if desk_extra_missing():
        raise DeskError(DESK_EXTRA_MISSING)
    from livestrat.desk.cluster_feed import follow_cluster

    await follow_cluster(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=args.namespace,
        all_namespaces=args.all_namespaces,
    )
    return 0


async def _connect(args: argparse.Namespace) -> Cluster:
    return await Cluster.connect(
        kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace, verb=args.verb
    )


async def _rows(cluster: Cluster, args: argparse.Namespace, now: datetime) -> list[fleet.StrategyRow]:
    scope = None if args.all_namespaces else cluster.namespace
    rows = [fleet.row(body, now) for body in await cluster.list_strategies(scope)]
    return fleet.select(rows, fleet.Filters(mode=args.mode, phase=args.phase, risk=args.risk))


def _print_document(document: Any, form: str) -> None:
    if form == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False))


async def _list(args: argparse.Namespace) -> int:
    now = _now()
    async with await _connect(args) as cluster:
        rows = fleet.sort_rows(await _rows(cluster, args, now), args.sort or "name")
    if args.output in ("json", "yaml"):
        _print_document(views.fleet_document(rows, now), args.output)
    else:
        _console().print(views.fleet_view(rows, now, wide=args.output == "wide"))
    return 0


async def _top(args: argparse.Namespace) -> int:
    sort = args.sort or "risk"

    def screen(rows: list[fleet.StrategyRow]) -> RenderableType:
        shown = fleet.sort_rows(rows, sort)[: args.limit] if args.limit else fleet.sort_rows(rows, sort)
        return views.fleet_view(shown, _now())

    async with await _connect(args) as cluster:
        if not args.watch:
            _console().print(screen(await _rows(cluster, args, _now())))
            return 0
        from rich.live import Live

        filters = fleet.Filters(mode=args.mode, phase=args.phase, risk=args.risk)
        bodies: dict[str, dict[str, Any]] = {}
        scope = None if args.all_namespaces else cluster.namespace
        console = _console()
        # A terminal gets one screen redrawn in place; a pipe gets one frame per change, each under its time.
        live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        with live or contextlib.nullcontext():
            async for kind, body in cluster.watch_strategies(scope):
                meta = body.get("metadata") or {}
                key = f"{meta.get('namespace')}/{meta.get('name')}"
                if kind == "DELETED":
                    bodies.pop(key, None)
                else:
                    bodies[key] = body
                rows = fleet.select([fleet.row(b) for b in bodies.values()], filters)
                if live is not None:
                    live.update(screen(rows), refresh=True)
                else:
                    console.print(f"--- {_now().isoformat(timespec='seconds')}")
                    console.print(screen(rows))
                    console.file.flush()
    return 0


async def _budgets(args: argparse.Namespace) -> int:
    async with await _connect(args) as cluster:
        if args.name is not None:
            found = budgets.row(await cluster.get_budget(cluster.namespace, args.name))
        else:
            scope = None if args.all_namespaces else cluster.namespace
            rows = sorted(
                (budgets.row(body) for body in await cluster.list_budgets(scope)),
                key=lambda each: (each.namespace, each.name),
            )
    if args.name is not None:
        if args.output:
            _print_document(budget_views.budget_document(found, members=True), args.output)
        else:
            _console().print(budget_views.budget_view(found))
    elif args.output:
        _print_document(budget_views.budgets_document(rows), args.output)
    else:
        _console().print(budget_views.budgets_view(rows))
    return 0


async def _status(args: argparse.Namespace) -> int:
    now = _now()
    async with await _connect(args) as cluster:
        namespace = cluster.namespace
        body = await cluster.get_strategy(namespace, args.name)
        row = fleet.row(body, now)
        events = await cluster.events_for(namespace, args.name)
        pod = await cluster.get(PODS, namespace, row.status.pod_name or f"{args.name}{names.POD_SUFFIX}")
        compared = await _twin_comparison(cluster, body, row)
    last_fills = None
    if args.ledger_file is not None:
        found = await ledger.read_fills(row, ledger.given_dsn(args.ledger_file) or ("", ""))
        last_fills = (found, ledger.fill_rows(found.fills[-LAST_FILLS:]))
    if args.output:
        document = views.status_document(row, events, pod, now)
        document["twin"] = compared.document() if compared is not None else None
        if last_fills is not None:
            document["lastFills"] = last_fills[1]
        _print_document(document, args.output)
    else:
        _console().print(views.status_view(row, events, pod, now))
        if compared is not None:
            _console().print(views.twin_section(compared))
        if last_fills is not None:
            found, rows = last_fills
            _console().print(views.fills_view(rows, found.key, found.where, of=len(found.fills)))
    return 0


async def _twin_comparison(cluster: Cluster, body: dict[str, Any], live: fleet.StrategyRow) -> TwinComparison | None:
    """Live vs its paper twin, when it keeps one (spec.twin) and the twin's object says it is this one's."""
    spec = body.get("spec")
    if not isinstance(spec, dict) or not spec.get("twin"):
        return None
    found = await cluster.get(LIVESTRATEGIES, live.namespace, twin_name(live.name))
    twin = find_twin(live, [fleet.row(found)]) if found is not None else None
    return TwinComparison.of(live, twin) if twin is not None else None


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


async def _act(args: argparse.Namespace) -> int:
    make: Callable[..., Any] = args.action
    async with await _connect(args) as cluster:
        namespace = cluster.namespace
        action: actions.Action = await make(cluster, namespace, args)
        print(action.describe())
        if action.nothing_to_do:
            return 0
        if not args.yes and not _ask("Do it?"):
            print("not done: answer y, or run with --yes", file=sys.stderr)
            return NOT_CONFIRMED
        outcome = await action.run(cluster)
        print("done: " + "; ".join(outcome.done))
        state = outcome.state
        if getattr(args, "wait", False) and action.name in actions.SETTLED:
            state = await actions.wait_for_phase(
                cluster, namespace, args.name, actions.SETTLED[action.name], args.timeout
            )
    if state.get("kind") == "Namespace" or "spec" not in state:
        annotations = (state.get("metadata") or {}).get("annotations") or {}
        print(f"now: namespace {namespace} annotations {json.dumps(annotations, sort_keys=True)}")
    else:
        row = fleet.row(state, _now())
        print(
            f"now: phase {row.phase}, spec.replicas {row.desired_replicas}, {row.replicas} pod(s), "
            f"{row.open_orders} open order(s)" + (f", halt annotation {row.halt_note!r}" if row.halt_note else "")
        )
    return 0


async def _promote(cluster: Cluster, namespace: str, args: argparse.Namespace) -> actions.Action:
    manifest = None
    if args.filename is not None:
        try:
            docs = [d for d in yaml.safe_load_all(args.filename.read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            raise DeskError(f"-f {args.filename}: cannot read it ({exc})") from None
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise DeskError(f"-f {args.filename}: give exactly one LiveStrategy manifest, found {len(docs)} documents")
        manifest = docs[0]
    return await promotion.promote(cluster, namespace, args.paper, args.name, manifest)


async def _fills(args: argparse.Namespace) -> int:
    async with await _connect(args) as cluster:
        row = fleet.row(await cluster.get_strategy(cluster.namespace, args.name))
    dsn = ledger.given_dsn(args.ledger_file)
    if dsn is None:
        raise ledger.no_dsn(row)
    found = await ledger.read_fills(row, dsn)
    fills = found.fills[-args.last :] if args.last else found.fills
    if args.output == "csv":
        sys.stdout.write(ledger.csv_text(fills))
    elif args.output == "json":
        sys.stdout.write(ledger.json_text(fills))
    else:
        _console().print(views.fills_view(ledger.fill_rows(fills), found.key, found.where))
    return 0


async def _report(args: argparse.Namespace) -> int:
    now = _now()
    async with await _connect(args) as cluster:
        namespace = cluster.namespace
        directory = args.dir or Path(f"livestrat-report-{namespace}-{args.name}-{now.strftime('%Y%m%dT%H%M%SZ')}")
        dsn = ledger.given_dsn(args.ledger_file) if args.ledger_file is not None else None
        bundle = await write_report(
            cluster, namespace, args.name, directory, now, tail_lines=args.tail_lines, ledger_dsn=dsn
        )
    print(f"report of LiveStrategy {args.name} in namespace {namespace}: {directory}/ ({len(bundle.written)} files)")
    for what in bundle.missing:
        print(f"  not included: {what}")
    if args.tar:
        print(f"packed: {archive(directory)}")
    return 0


async def _logs(args: argparse.Namespace) -> int:
    async with await _connect(args) as cluster:
        namespace = cluster.namespace
        body = await cluster.get_strategy(namespace, args.name)
        row = fleet.row(body)
        pod = row.status.pod_name or f"{args.name}{names.POD_SUFFIX}"
        try:
            if args.follow:
                async for line in cluster.follow_log(namespace, pod, tail_lines=args.tail, since_seconds=args.since):
                    sys.stdout.write(scrub_text(line))  # a secret a strategy logged by mistake stays off the screen
                    sys.stdout.flush()
            else:
                text = await cluster.pod_log(
                    namespace, pod, tail_lines=args.tail, since_seconds=args.since, previous=args.previous
                )
                sys.stdout.write(scrub_text(text))
        except NotFound:
            raise DeskError(
                f"LiveStrategy {args.name} in namespace {namespace} has no pod {pod} (phase {row.phase}): a halted "
                "strategy has no log to read; its last status is in `kubectl livestrat status`"
            ) from None
    return 0


# ------------------------------------------------------------------------------------------------ entry point


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(args.run(args))
    except DeskError as exc:
        print(f"kubectl livestrat {args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubectl livestrat list | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes stdout at exit: give it a sink)
        return 0


if __name__ == "__main__":
    sys.exit(main())
