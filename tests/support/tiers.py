"""Test tiers: ``make test-fast`` runs every test that needs no process, PostgreSQL or operator.

A test belongs to the slow tier when it is marked ``slow`` or asks for a fixture that starts
one of those (``SLOW_FIXTURES``); nothing else names tests. The fast tier (``--fast``, what
``make test-fast`` passes) deselects the slow tier and then holds the rest to it: a fast test
that starts a process anyway (``subprocess``, ``asyncio.create_subprocess_*``,
``multiprocessing``) fails, naming what it started, instead of silently slowing the tier down. The one
exception is the ledger's I/O process, part of every SQLite ledger and fill spool (``_is_ledger_writer``).
``make test`` runs both tiers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
from typing import Any

import pytest

from strategy_runtime.ledger import io_child

# Fixtures that start a PostgreSQL server, the operator, or runtime processes.
SLOW_FIXTURES = frozenset({"pg_server", "pg_dsn", "pg_database", "pg_password_role", "kube_env", "operator_api_calls"})


def is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="run only the fast tier: no process, PostgreSQL or operator (see tests/support/tiers.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow(item) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
    if not config.getoption("--fast"):
        return
    slow = [item for item in items if is_slow(item)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not is_slow(item)]


def _is_ledger_writer(argv: Any) -> bool:
    """The ledger's I/O process (``strategy_runtime/ledger/io_child.py``: a script of the standard library, 30–50 ms
    to start): part of every SQLite ledger and fill spool, as their threads were. A test of a ledger, of a spool or
    of a paper run does not start a process of its own by opening one."""
    argv = list(argv) if isinstance(argv, list | tuple) else [argv]
    return len(argv) >= 4 and argv[1:3] == ["-I", "-S"] and str(argv[3]) == io_child.__file__


def _unless_ledger_writer(start: Any, refused: Any, argv_of: Any) -> Any:
    def starter(*args: Any, **kwargs: Any) -> Any:
        return (start if _is_ledger_writer(argv_of(args, kwargs)) else refused)(*args, **kwargs)

    return starter


class ProcessInFastTier(AssertionError):
    """A test of the fast tier started a process: mark it ``slow`` (or give it a slow fixture)."""


@pytest.fixture(autouse=True)
def _no_process_in_the_fast_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if not request.config.getoption("--fast"):
        return

    def refuse(what: str) -> Any:
        def starter(*args: Any, **kwargs: Any) -> Any:
            raise ProcessInFastTier(
                f"{request.node.nodeid} started a process ({what} {args[:1]!r}) in the fast tier: "
                "mark it @pytest.mark.slow (tests/support/tiers.py)"
            )

        return starter

    # Plain asyncio starts a subprocess through Popen; uvloop does not.
    popen = _unless_ledger_writer(
        subprocess.Popen.__init__, refuse("subprocess.Popen"), lambda a, k: k["args"] if "args" in k else a[1]
    )
    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    start = _unless_ledger_writer(
        asyncio.create_subprocess_exec, refuse("asyncio.create_subprocess_exec"), lambda a, k: a
    )
    monkeypatch.setattr(asyncio, "create_subprocess_exec", start)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse("asyncio.create_subprocess_shell"))
    monkeypatch.setattr(multiprocessing.Process, "start", refuse("multiprocessing.Process.start"))
