"""``livestrat``: the one command of the project.

Each subcommand imports its part only when it runs: the operator image carries no
NautilusTrader and the runtime image no kopf, and ``livestrat --help`` needs neither.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from livestrat import manifests
from livestrat.api.runtime_config import CONFIG_FILE_NAME, CONFIG_MOUNT_DIR, HTTP_PORT

DESCRIPTION = "livestrat runs NautilusTrader strategies on Kubernetes: one pod per LiveStrategy resource."
EPILOG = "Run `livestrat COMMAND --help` for a command's options. Documentation: docs/ in the repository."


def _cmd_validate(args: argparse.Namespace) -> int:
    from livestrat.api.validation import problems

    failed = 0
    for path in args.files:
        try:
            documents = list(manifests.load_checkable(Path(path)))
        except manifests.ManifestError as exc:
            # Keep going: one unreadable file must not hide the verdict on the others.
            failed += 1
            print(f"{exc}")
            continue
        for index, doc in documents:
            where = f"{path}" + (f" (document {index + 1})" if index else "")
            found = problems(doc)
            if found:
                failed += 1
                print(f"{where}: INVALID")
                for problem in found:
                    print(f"  {problem}")
            elif args.strict and manifests.is_strategy(doc):  # a RiskBudget has nothing more to check
                failed += _strict(args, path, where, doc)
            else:
                print(f"{where}: ok ({doc['metadata'].get('name', '?')})")
    return 1 if failed else 0


def _strict(args: argparse.Namespace, path: str, where: str, doc: dict) -> int:
    """``validate --strict`` of one valid manifest: the strategy, the venue and the data, as the run would meet
    them (imports NautilusTrader: the runtime's packages); 1 when it cannot run as written."""
    from strategy_runtime.local.config import runtime_config_of
    from strategy_runtime.preflight import Severity, preflight

    config = runtime_config_of(doc, source=path, workdir=Path(args.workdir), catalog=_path(args.catalog))
    found = preflight(config)
    errors = [f for f in found if f.severity == Severity.ERROR]
    verdict = "INVALID" if errors else "ok"
    print(f"{where}: {verdict} ({doc['metadata'].get('name', '?')}, strict: strategy, venue, data)")
    for finding in found:
        print(f"  {finding}")
    return 1 if errors else 0


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _cmd_crd(args: argparse.Namespace) -> int:
    from livestrat.api.crd import render_all, write_crds

    if args.write:
        for path in write_crds(Path(args.write)):
            print(f"wrote {path}")
    else:
        sys.stdout.write(render_all())
    if args.policy:
        from livestrat.api.admission import write_validations

        print(f"wrote {write_validations(Path(args.policy))}")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from livestrat.api.reference import write_reference

    print(f"wrote {write_reference(Path(args.output))}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from strategy_runtime.local.run import run_local

    return run_local(args)


def _cmd_rehearse(args: argparse.Namespace) -> int:
    from strategy_runtime.local.rehearse import rehearse_command

    return rehearse_command(args)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from strategy_runtime.local.backtest import run_backtest_command

    return run_backtest_command(args)


def _cmd_fills(args: argparse.Namespace) -> int:
    from strategy_runtime.local.fills import fills_command

    return fills_command(args)


def _cmd_runtime(args: argparse.Namespace) -> int:
    from strategy_runtime.entrypoint import run_pod

    return run_pod(args)


def _cmd_venue_emulator(args: argparse.Namespace) -> int:
    from livestrat.venue_emulator.server import run_command

    return run_command(args)


def _cmd_operator(args: argparse.Namespace) -> int:
    from strategy_operator import client_libraries

    client_libraries.leave_out()  # before kopf is imported: it would import them, 80 MiB of models
    from strategy_operator.main import run_operator

    return run_operator(args)


def _speed(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (as fast as possible) or a positive pace factor")
    return value


def _local_data_arguments(p: argparse.ArgumentParser) -> None:
    """What `run` and `backtest` share: they read the same catalog from the same place."""
    p.add_argument("file", metavar="FILE", help="a LiveStrategy manifest (paper mode)")
    p.add_argument("--workdir", default=".livestrat", help="where catalogs and ledgers go (default .livestrat)")
    p.add_argument("--catalog", metavar="DIR", help="catalog directory (default WORKDIR/catalogs/NAME)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livestrat", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=f"{summary}. {details}".strip())

    p = command(
        "run",
        "Run a strategy locally in paper mode, on replayed data or a venue's live feed",
        "No cluster or database server needed: the ledger is an SQLite file under WORKDIR, or PostgreSQL "
        "with a DSN in LIVESTRAT_LEDGER_DSN or in --ledger-file. Ctrl-C halts it the way a pod halts.",
    )
    _local_data_arguments(p)
    p.add_argument(
        "--ledger-file",
        metavar="PATH",
        help="a file holding the PostgreSQL DSN (postgresql://USER:PASSWORD@HOST:PORT/DB, with / ? # @ %% in the "
        "password percent-encoded); default: $LIVESTRAT_LEDGER_DSN when set, else an SQLite file in WORKDIR. "
        "Never on the command line: --ledger DSN is refused (ps shows argv to everyone)",
    )
    p.add_argument("--ledger", metavar="DSN", help=argparse.SUPPRESS)  # refused with a message that says why
    p.add_argument("--speed", type=_speed, help="override spec.data.replay.speed (0 = as fast as possible)")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.add_argument("--fills-json", metavar="PATH", help="also write the run's fills, as the ledger holds them, as JSON")
    p.add_argument("--fills-csv", metavar="PATH", help="also write the run's fills, as the ledger holds them, as CSV")
    p.set_defaults(func=_cmd_run)

    p = command(
        "rehearse",
        "Rehearse a live strategy: its manifest, unchanged, through the venue's real adapter against a local "
        "venue emulator",
        "Binance spot and USD-M futures. Starts livestrat venue-emulator on 127.0.0.1 fed by the catalog, with a key "
        "pair it generates; the ledger is an SQLite file under WORKDIR (a rehearsal only), or PostgreSQL as for run. "
        "Prints run's summary and what the venue says (its fills against the ledger's, the orders it still holds).",
    )
    p.add_argument("file", metavar="FILE", help="a LiveStrategy manifest (live mode, binance adapter)")
    p.add_argument("--workdir", default=".livestrat", help="where catalogs and ledgers go (default .livestrat)")
    p.add_argument("--catalog", metavar="DIR", help="catalog directory (default WORKDIR/catalogs/NAME)")
    p.add_argument(
        "--speed",
        type=_speed,
        default=60.0,
        help="the emulator's pace over the catalog's time (default 60: a one-minute bar a second)",
    )
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="halt after S seconds (default: when the catalog's market is over, at --speed; Ctrl-C halts at any time)",
    )
    p.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="'AMOUNT ASSET'",
        help="a starting balance of the emulated account (repeatable; default 100000 of each quote asset)",
    )
    p.add_argument(
        "--ledger-file",
        metavar="PATH",
        help="a file holding the PostgreSQL DSN (default: $LIVESTRAT_LEDGER_DSN when set, else an SQLite file)",
    )
    p.add_argument("--ledger", metavar="DSN", help=argparse.SUPPRESS)  # refused with a message that says why
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.set_defaults(func=_cmd_rehearse)

    p = command(
        "backtest",
        "Run the same spec as a NautilusTrader backtest over the same catalog",
        "The correctness oracle of paper runs: same data, same strategy, same fills.",
    )
    _local_data_arguments(p)
    p.add_argument("--fills-json", metavar="PATH", help="also write every fill to PATH as JSON")
    p.set_defaults(func=_cmd_backtest)

    p = command(
        "fills",
        "Print a strategy's fills from a ledger (SQLite or PostgreSQL), or the strategies it holds",
        "Reads only: never takes a running strategy's fence. The ledger: --sqlite PATH, or PostgreSQL with the DSN "
        "in LIVESTRAT_LEDGER_DSN or in --ledger-file. Without --strategy it lists the strategy keys and their fills.",
    )
    p.add_argument(
        "--sqlite", metavar="PATH", help="an SQLite ledger file (livestrat run's: WORKDIR/state/NAME/ledger.sqlite)"
    )
    p.add_argument(
        "--ledger-file",
        metavar="PATH",
        help="a file holding the PostgreSQL DSN (default: $LIVESTRAT_LEDGER_DSN); never a DSN on the command line",
    )
    p.add_argument(
        "--strategy",
        metavar="KEY",
        help="the strategy key (NAMESPACE/NAME in a cluster; livestrat run prints its own), or a NAME that only one "
        "key ends with",
    )
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    p.add_argument("--output", metavar="PATH", help="write to PATH instead of stdout")
    p.set_defaults(func=_cmd_fills)

    p = command(
        "validate",
        "Check manifests offline",
        "Applies the API's types, bounds, defaults and the CRD's CEL rules, as the API server "
        "would; prints each problem with its field. Exit status 1 if any manifest is invalid.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML files with LiveStrategy (or RiskBudget) documents")
    p.add_argument(
        "--strict",
        action="store_true",
        help="also import the strategy and build its config (unknown keys, missing fields), build the venue's "
        "configs offline, and check that the catalog holds the instruments, the bar types the config names and "
        "data in the replay window (paper); needs the runtime's packages (NautilusTrader)",
    )
    p.add_argument("--workdir", default=".livestrat", help="with --strict: as for run (default .livestrat)")
    p.add_argument(
        "--catalog", metavar="DIR", help="with --strict: the catalog to check (default WORKDIR/catalogs/NAME)"
    )
    p.set_defaults(func=_cmd_validate)

    p = command("crd", "Print the CustomResourceDefinitions (LiveStrategy, RiskBudget) generated from the API models")
    p.add_argument(
        "--write", metavar="DIR", help="write each into DIR (its own file, named after the CRD) instead of stdout"
    )
    p.add_argument(
        "--policy", metavar="PATH", help="also write the admission policy's validations (undeclared fields) to PATH"
    )
    p.set_defaults(func=_cmd_crd)

    p = command("docs", "Write the API field reference generated from the models")
    p.add_argument("--output", default="docs/api.md", metavar="PATH", help="where (default docs/api.md)")
    p.set_defaults(func=_cmd_docs)

    p = command(
        "runtime",
        "The strategy pod's entrypoint",
        "Reads the configuration the operator rendered and secrets from the environment; "
        f"serves /healthz, /readyz, /metrics and /state on port {HTTP_PORT} of every IPv4 address (runtime.json's "
        "httpPort and httpHost say otherwise).",
    )
    p.add_argument("--config", default=f"{CONFIG_MOUNT_DIR}/{CONFIG_FILE_NAME}", help="rendered runtime configuration")
    p.set_defaults(func=_cmd_runtime)

    p = command(
        "venue-emulator",
        "Serve a local venue that speaks Binance's (or OKX's) protocol, its market replayed from a catalog",
        "NautilusTrader's Binance (or OKX) adapter connects to it with only its base URLs changed. Prints one JSON "
        "line (http, ws_api, ws_stream, admin URLs; OKX: http, ws_public, ws_private, ws_business, admin) when "
        "ready, then serves until SIGTERM/SIGINT. See docs/runtime.md.",
    )
    p.add_argument(
        "--venue",
        choices=("binance", "okx"),
        default="binance",
        help="the protocol: binance (spot and USD-M, the default) or okx (spot; instruments like BTC-USDT.OKX)",
    )
    p.add_argument("--catalog", required=True, metavar="DIR", help="the catalog whose history is the market")
    p.add_argument("--instrument", required=True, action="append", metavar="ID", help="an instrument id (repeatable)")
    p.add_argument(
        "--scenario",
        required=True,
        metavar="FILE",
        help="YAML/JSON: the keys, balances, open orders and scripted faults (docs/runtime.md, Venue emulator)",
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay pace: catalog seconds per wall second (default 1)")
    p.add_argument("--start", metavar="TIME", help="where in the catalog the market starts (default its first event)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port (default 0: a free one, printed)")
    p.add_argument(
        "--state",
        metavar="FILE",
        help="keep the books (orders, trades, balances, positions, ids) in FILE and start from it when it exists, "
        "so the emulator itself can be restarted",
    )
    p.set_defaults(func=_cmd_venue_emulator)

    p = command(
        "operator",
        "Run the Kubernetes operator",
        "Uses the in-cluster configuration or the current kubeconfig; settings come from "
        "LIVESTRAT_* environment variables (docs/operator.md).",
    )
    p.add_argument(
        "--namespace", action="append", default=[], metavar="NS", help="watch only NS (repeatable); default all"
    )
    p.set_defaults(func=_cmd_operator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except manifests.ManifestError as exc:
        print(f"livestrat: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
