"""Test tiers: ``make test-fast`` runs every test that needs no process, PostgreSQL or operator.

A test belongs to the slow tier when it is marked ``slow`` or asks for a fixture that starts
one of those (``SLOW_FIXTURES``); nothing else names tests. The fast tier (``--fast``, what
``make test-fast`` passes) deselects the slow tier and then holds the rest to it: a fast test
that starts a process anyway (``subprocess``, ``asyncio.create_subprocess_*``,
``multiprocessing``) fails, naming what it started, instead of silently slowing the tier down.
``make test`` runs both tiers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
from typing import Any

import pytest

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

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("subprocess.Popen"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse("asyncio.create_subprocess_exec"))
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse("asyncio.create_subprocess_shell"))
    monkeypatch.setattr(multiprocessing.Process, "start", refuse("multiprocessing.Process.start"))
