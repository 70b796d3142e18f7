"""The ledger's I/O process, the runtime's side: the writes that make fills durable, without a thread of its own.

The sqlite3 module lets go of the interpreter's lock around every statement it steps and takes it back after;
``os.write`` and ``os.fdatasync`` do the same. A thread of the runtime's process doing those writes therefore
waited for the event loop's thread several times a commit or a sync, and each wait cost that thread a forced
hand-over (docs/ledger.md, "The ledger's I/O process"). Here a child process (``io_child``, run as a script by
the same interpreter: ``python -I -S io_child.py MODE …``, nothing but a few modules of the standard library
imported) does them: the runtime writes a request into a pipe and reads the answer from another, on its event
loop, with no second thread and no lock shared. Two uses: the SQLite ledger's inserts (``sqlite``) and the
fill spool's appends (``spool``).

A child that dies fails the request in hand (``IoProcessError``): the next request starts a new one, and the
caller retries (the SQLite ledger's insert is stored at most once, by the key's ``ON CONFLICT DO NOTHING``; the
spool starts a new segment). It gets none of the runtime's environment (its Secrets) and exits when its input
ends: when its user stops it, or when the runtime's process dies however it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import sys
from typing import Any

from strategy_runtime.ledger import io_child
from strategy_runtime.ledger.io_child import HEADER

logger = logging.getLogger("livestrat.ledger")


def _child_environment() -> dict[str, str]:
    """None of the runtime's environment (its Secrets) reaches the child, but where an interpreter built with a
    shared library that its own path does not name finds it."""
    return {name: os.environ[name] for name in ("LD_LIBRARY_PATH",) if name in os.environ}


class IoProcessError(Exception):
    """The request did nothing: SQLite or the disk refused it, or the ledger's I/O process is gone."""


class IoProcess:
    """A child of ``io_child``'s with ``args`` (``["sqlite", DATABASE]``, ``["spool"]``): started by ``start`` (so
    that the first request does not wait for an interpreter to start) or by the first request, and again by the
    next request after it died."""

    def __init__(self, args: list[str], *, stop_timeout: float = 5.0) -> None:
        self.args = args
        self.stop_timeout = stop_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.started = 0  # how many children this ledger has started (a restart after a death counts)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def request(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        """Send ``message``, return the child's reply; ``IoProcessError`` for ``("error", text)`` and for a child
        gone."""
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        async with self._lock:
            process = await self._running()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(HEADER.pack(len(body)) + body)
                await process.stdin.drain()
                (size,) = HEADER.unpack(await process.stdout.readexactly(HEADER.size))
                reply: tuple[Any, ...] = pickle.loads(await process.stdout.readexactly(size))
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise IoProcessError(await self._ended(process)) from exc
            except BaseException:
                # Cancelled mid-request (its user closing): the pipes may hold half a message; this child is done.
                self._kill(process)
                raise
        if reply[0] == "error":
            raise IoProcessError(reply[1])
        return reply

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
                try:  # a child stuck in the kernel (a sync on a hung volume) dies when it returns: not waited for
                    await asyncio.wait_for(process.wait(), self.stop_timeout)
                except TimeoutError:
                    logger.error("ledger: the I/O process %d did not end when killed; left to the kernel", process.pid)

    def abandon(self) -> None:
        """Close the child's input without waiting (where nothing can await ``stop``): it ends by itself."""
        process, self._process = self._process, None
        if process is not None and process.stdin is not None:
            process.stdin.close()

    async def _running(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # no PYTHON* variables, no user site, no script directory on the path
                "-S",  # no site-packages: the standard library is all it needs
                io_child.__file__,
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=_child_environment(),
            )
        except OSError as exc:
            raise IoProcessError(f"cannot start the ledger's I/O process: {exc}") from exc
        self._process = process
        self.started += 1
        return process

    async def _ended(self, process: asyncio.subprocess.Process) -> str:
        """Why the child stopped answering (it is gone, or made so), for the writer's log."""
        self._kill(process)
        try:
            code = await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            return "the ledger's I/O process stopped answering"
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"the ledger's I/O process ended ({how})"

    def _kill(self, process: asyncio.subprocess.Process) -> None:
        if self._process is process:
            self._process = None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
