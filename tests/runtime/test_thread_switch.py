"""A runtime hands the interpreter's lock to a waiting thread (the ledger's) within 0.2 ms, not CPython's 5 ms.

Why, with the measurements: ``strategy_runtime.thread_switch``. What is tested here is that the short interval
holds while a runtime runs (as the ledger's thread sees it, committing a fill), that it is given back after, and
that runtimes overlapping in one process (the tests, an embedding program) leave the interval as they found it
only when the last of them ends.
"""

from __future__ import annotations

import sys

import pytest

from strategy_runtime.ledger.io_process import IoProcess
from strategy_runtime.thread_switch import SWITCH_INTERVAL_SECONDS, prompt_thread_switches
from tests.support.runtime import local_run, paper_manifest, runtime_config

SHORT = pytest.approx(SWITCH_INTERVAL_SECONDS)  # CPython keeps it in whole microseconds


def test_the_interval_is_short_inside_and_given_back_after_the_last_overlapping_user_leaves():
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL_SECONDS * 2  # CPython's default (5 ms), unless something already changed it
    first, second = prompt_thread_switches(), prompt_thread_switches()
    first.__enter__()
    assert sys.getswitchinterval() == SHORT
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs: still short
    assert sys.getswitchinterval() == SHORT
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before


def test_an_exception_gives_the_interval_back():
    before = sys.getswitchinterval()
    try:
        with prompt_thread_switches():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert sys.getswitchinterval() == before


async def test_a_runtime_replays_under_the_short_interval_and_gives_it_back(tmp_path, monkeypatch):
    # Read at each commit, mid-run: the interval a thread waiting for the interpreter (the PostgreSQL ledger's
    # spool, the SQLite ledger's reads and rare writes) meets while the runtime runs.
    seen: list[float] = []
    request = IoProcess.request

    async def recording(self, message):
        seen.append(sys.getswitchinterval())
        return await request(self, message)

    monkeypatch.setattr(IoProcess, "request", recording)
    before = sys.getswitchinterval()
    run = await local_run(runtime_config(paper_manifest(bars=600), tmp_path / "catalog"))

    assert run.ledger_fills, "the replay made no fill: nothing was committed to look at"
    assert seen and all(interval == SHORT for interval in seen)
    assert sys.getswitchinterval() == before
