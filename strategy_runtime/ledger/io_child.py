"""The ledger's I/O process, the child's side: the writes that make fills durable, away from the runtime's interpreter.

Run as a script by the runtime's interpreter (``python -I -S io_child.py sqlite DATABASE`` or ``… io_child.py
spool``; ``io_process.IoProcess`` starts it), it imports a few modules of the standard library and nothing else,
so that it starts in a few tens of milliseconds. Requests and replies are length-prefixed pickles over its
standard input and output (between a process and the child it started: nobody else writes them). Each reply is
``("ok", value)``, ``("error", text)`` (the request did nothing), or a kind of its own named below. The child
ends when its input ends: the runtime closed it, or the runtime's process is gone.

``sqlite DATABASE``: ``("insert", sql, params, strategy_key, epoch)`` runs one fenced ``INSERT`` of the SQLite
ledger (``sqlite.fenced_insert_sql``) on the child's own connection: ``("ok", rows stored)``, or ``("fenced",
the epoch the fence has now)`` when it stored nothing because ``epoch`` is no longer the fence's.

``spool``: the fill spool's file operations (``spool.FillSpool``), on files the runtime created:
``("append", path, data, size)`` appends ``data`` to the segment ``path`` (``size`` bytes long before it) and
``fdatasync``s it: ``("ok", None)`` once durable; if the write or the sync fails, the segment is cut back to
``size`` and the reply is ``("failed", text, True)`` (``False``: it could not be cut back, a partial line may
follow). ``("truncate", path)`` empties a segment, ``("unlink", path)`` removes one.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sqlite3
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

HEADER = struct.Struct("<I")  # each message: its length, then its pickle
EPOCH_SQL = "SELECT epoch FROM fences WHERE strategy_key = ?"  # the fence's token now
BUSY_TIMEOUT_MS = 10_000  # another writer's transaction is waited for this long


def configure(conn: sqlite3.Connection) -> None:
    """What every connection to a ledger file is set to: the runtime's own and the I/O process's."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")  # a commit survives a power cut too, not only a crash of this process


def read_message(stream: BinaryIO) -> Any | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None  # the runtime closed its end, or is gone
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def write_message(stream: BinaryIO, reply: tuple[Any, ...]) -> None:
    body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


class SqliteInserts:
    """The SQLite ledger's fenced inserts, on a connection of the child's own."""

    def __init__(self, database: str) -> None:
        # mode=rw: the runtime made the file and its tables; a file gone since is an error, not a new empty ledger.
        self.conn = sqlite3.connect(f"{Path(database).absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
        configure(self.conn)

    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        _, sql, params, strategy_key, epoch = request
        before = self.conn.total_changes
        self.conn.execute(sql, params)
        stored = self.conn.total_changes - before
        if stored == 0:  # all duplicates, or a stale token: the epoch tells which
            row = self.conn.execute(EPOCH_SQL, (strategy_key,)).fetchone()
            if row is None or row[0] != epoch:
                return ("fenced", row[0] if row else None)
        return ("ok", stored)

    def close(self) -> None:
        self.conn.close()


class SpoolFiles:
    """The spool's appends and syncs; one segment open at a time (the runtime appends to one only)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.fd: int | None = None

    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        kind, path = request[0], request[1]
        if kind == "append":
            return self._append(path, request[2], request[3])
        if kind == "truncate":
            os.ftruncate(self._open(path), 0)
        elif kind == "unlink":
            if path == self.path:
                self.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            return ("error", f"unknown request {kind!r}")
        return ("ok", None)

    def _append(self, path: str, data: bytes, size: int) -> tuple[Any, ...]:
        fd = self._open(path)  # an error here wrote nothing: the caller's OSError reply
        actual = os.fstat(fd).st_size
        if actual != size:
            # Not the file the runtime knows (a truncate whose answer was lost): a cut-back to ``size`` would not
            # remove a partial line, and the next line would join it. Nothing written; the runtime starts a new one.
            return ("failed", f"the segment holds {actual} bytes, not the {size} the runtime knows: not written", False)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fdatasync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)  # back to its last synced line
            except OSError:
                return ("failed", f"{type(exc).__name__}: {exc}", False)
            return ("failed", f"{type(exc).__name__}: {exc}", True)
        return ("ok", None)

    def _open(self, path: str) -> int:
        if path != self.path or self.fd is None:
            self.close()
            # O_APPEND: every write lands at the end, wherever the runtime truncated the file to.
            self.fd, self.path = os.open(path, os.O_WRONLY | os.O_APPEND), path
        return self.fd

    def close(self) -> None:
        fd, self.fd, self.path = self.fd, None, None
        if fd is not None:
            os.close(fd)


def serve(argv: list[str], requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until the input ends."""
    server: SqliteInserts | SpoolFiles | None = None
    broken = None
    try:
        server = SqliteInserts(argv[1]) if argv[0] == "sqlite" else SpoolFiles()
    except (sqlite3.Error, OSError) as exc:
        broken = f"cannot open {argv[1]}: {exc}"
    while (request := read_message(requests)) is not None:
        if server is None:
            write_message(replies, ("error", broken))
            return
        try:
            reply = server.handle(request)
        except (sqlite3.Error, OSError) as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        write_message(replies, reply)
    if server is not None:
        server.close()


def main() -> None:
    # A Ctrl-C in a terminal, or a service manager's SIGTERM to every process of the group, is for the runtime:
    # it halts and makes what it holds durable through this child, which ends when the runtime closes its input.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by mistake may land in the replies
    with contextlib.suppress(BrokenPipeError):  # the runtime is gone: nobody to answer
        serve(sys.argv[1:], requests, replies)


if __name__ == "__main__":
    main()
