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

DESCRIPTION = """\
livestrat runs NautilusTrader strategies on Kubernetes: one pod per LiveStrategy resource.

commands:
  run FILE        run a strategy locally in paper mode on replayed data (no cluster needed)
  backtest FILE   run the same strategy as a NautilusTrader backtest over the same catalog
  validate FILE…  check manifests offline against the API models and the CRD's rules
  crd             print (or --write) the CustomResourceDefinition generated from the models
  docs            write docs/api.md, the field reference generated from the models
  runtime         the strategy pod's entrypoint (reads the config the operator rendered)
  operator        run the Kubernetes operator (kopf) against the current kubeconfig
"""


def _cmd_validate(args: argparse.Namespace) -> int:
    from livestrat.api.validation import problems

    failed = 0
    for path in args.files:
        for index, doc in manifests.load_strategies(Path(path)):
            where = f"{path}" + (f" (document {index + 1})" if index else "")
            found = problems(doc)
            if found:
                failed += 1
                print(f"{where}: INVALID")
                for problem in found:
                    print(f"  {problem}")
            else:
                print(f"{where}: ok ({doc['metadata'].get('name', '?')})")
    return 1 if failed else 0


def _cmd_crd(args: argparse.Namespace) -> int:
    from livestrat.api.crd import render_crd, write_crd

    if args.write:
        print(f"wrote {write_crd(Path(args.write))}")
    else:
        sys.stdout.write(render_crd())
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from livestrat.api.reference import write_reference

    print(f"wrote {write_reference(Path(args.output))}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from strategy_runtime.local_run import run_local

    return run_local(args)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from strategy_runtime.backtest import run_backtest_command

    return run_backtest_command(args)


def _cmd_runtime(args: argparse.Namespace) -> int:
    from strategy_runtime.entrypoint import run_pod

    return run_pod(args)


def _cmd_operator(args: argparse.Namespace) -> int:
    from strategy_operator.main import run_operator

    return run_operator(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livestrat", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check manifests offline (exit 1 on any error)")
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML files with LiveStrategy documents")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("crd", help="print the generated CustomResourceDefinition")
    p.add_argument("--write", metavar="PATH", help="write it to PATH instead of stdout")
    p.set_defaults(func=_cmd_crd)

    p = sub.add_parser("docs", help="write the API field reference (docs/api.md)")
    p.add_argument("--output", default="docs/api.md", metavar="PATH")
    p.set_defaults(func=_cmd_docs)

    p = sub.add_parser("run", help="run a strategy locally in paper mode on replayed data")
    p.add_argument("file", metavar="FILE", help="a LiveStrategy manifest (paper mode)")
    p.add_argument("--workdir", default=".livestrat", help="where catalogs and ledgers go (default .livestrat)")
    p.add_argument("--catalog", metavar="DIR", help="catalog directory (default WORKDIR/catalogs/NAME)")
    p.add_argument("--ledger", metavar="DSN", help="PostgreSQL DSN; default: SQLite file in WORKDIR")
    p.add_argument("--speed", type=float, help="override spec.data.replay.speed (0 = as fast as possible)")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("backtest", help="run the same spec as a NautilusTrader backtest")
    p.add_argument("file", metavar="FILE", help="a LiveStrategy manifest")
    p.add_argument("--workdir", default=".livestrat", help="where catalogs go (default .livestrat)")
    p.add_argument("--catalog", metavar="DIR", help="catalog directory (default WORKDIR/catalogs/NAME)")
    p.add_argument("--fills-json", metavar="PATH", help="also write every fill to PATH as JSON")
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("runtime", help="strategy pod entrypoint")
    p.add_argument("--config", default="/etc/livestrat/runtime.json", help="rendered runtime configuration")
    p.set_defaults(func=_cmd_runtime)

    p = sub.add_parser("operator", help="run the Kubernetes operator")
    p.add_argument(
        "--namespace", action="append", default=[], metavar="NS", help="watch only NS (repeatable); default all"
    )
    p.set_defaults(func=_cmd_operator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except manifests.ManifestError as exc:
        print(f"livestrat: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
