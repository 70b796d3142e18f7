"""The SQLite ledger's commits, in a process of their own: the event loop's interpreter is never handed to a writer.

The sqlite3 module lets go of the interpreter's lock around every statement it steps and takes it back after.
A writer thread in the runtime's process therefore waited for the event loop's thread several times a commit,
and each wait cost that thread a forced hand-over (docs/ledger.md, "Batching and lag"). Here a child process
(``sqlite_insert_child``, run as a script by the same interpreter: ``python -I -S sqlite_insert_child.py
DATABASE``, nothing but a few modules of the standard library imported) holds its own connection to the ledger
file and runs each batch's one fenced ``INSERT``; the runtime writes the statement and its parameters into a
pipe and reads the answer from another, on its event loop, with no second thread and no lock shared.

What the child answers, per request: ``("ok", rows stored)``, ``("fenced", the epoch the fence has now)`` when the
statement stored nothing because the strategy's epoch is no longer the writer's, or ``("error", text)`` for
SQLite's or the disk's error (the batch was not stored; the writer retries it). A child that dies is a failed
insert too (``InsertProcessError``): the next insert starts a new one, and the batch, retried, is stored at most
once (the key's ``ON CONFLICT DO NOTHING``). It gets none of the runtime's environment (its Secrets) and
exits when its input ends: when the ledger closes, or when the runtime's process dies however it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from strategy_runtime.ledger import sqlite_insert_child
from strategy_runtime.ledger.sqlite_insert_child import HEADER


def _child_environment() -> dict[str, str]:
    """None of the runtime's environment (its Secrets) reaches the child, but where an interpreter built with a
    shared library that its own path does not name finds it."""
    return {name: os.environ[name] for name in ("LD_LIBRARY_PATH",) if name in os.environ}


class InsertProcessError(Exception):
    """The batch was not stored: SQLite or the disk refused it, or the writer process is gone."""


class InsertProcess:
    """The child that commits a ledger file's batches: started with the ledger's connection (``start``), so that
    the first fill does not wait for an interpreter to start, and again at the next insert after it died."""

    def __init__(self, database: Path, *, stop_timeout: float = 5.0) -> None:
        self.database = database
        self.stop_timeout = stop_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.started = 0  # how many children this ledger has started (a restart after a death counts)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def insert(self, sql: str, params: list[Any], strategy_key: str, epoch: int) -> tuple[str, int | None]:
        """Run one fenced ``INSERT``: ``("ok", rows stored)`` or ``("fenced", current epoch)``; else raises."""
        body = pickle.dumps((sql, params, strategy_key, epoch), protocol=pickle.HIGHEST_PROTOCOL)
        async with self._lock:
            process = await self._running()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(HEADER.pack(len(body)) + body)
                await process.stdin.drain()
                (size,) = HEADER.unpack(await process.stdout.readexactly(HEADER.size))
                kind, value = pickle.loads(await process.stdout.readexactly(size))
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise InsertProcessError(await self._ended(process)) from exc
            except BaseException:
                # Cancelled mid-request (the ledger closing): the pipes may hold half a message; this child is done.
                self._kill(process)
                raise
        if kind == "error":
            raise InsertProcessError(value)
        return kind, value

    async def start(self) -> None:
        """Start the child now (it opens the file while the runtime goes on), unless one runs."""
        async with self._lock:
            await self._running()

    async def stop(self) -> None:
        """End the child: its input closed, it finishes the statement in hand and exits (killed after the timeout)."""
        async with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                self._kill(process)
                await process.wait()

    async def _running(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # no PYTHON* variables, no user site, no script directory on the path
                "-S",  # no site-packages: the standard library is all it needs
                sqlite_insert_child.__file__,
                str(self.database),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=_child_environment(),
            )
        except OSError as exc:
            raise InsertProcessError(f"cannot start the ledger's writer process: {exc}") from exc
        self._process = process
        self.started += 1
        return process

    async def _ended(self, process: asyncio.subprocess.Process) -> str:
        """Why the child stopped answering (it is gone, or made so), for the writer's log."""
        self._kill(process)
        try:
            code = await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            return "the ledger's writer process stopped answering"
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"the ledger's writer process ended ({how})"

    def _kill(self, process: asyncio.subprocess.Process) -> None:
        if self._process is process:
            self._process = None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
