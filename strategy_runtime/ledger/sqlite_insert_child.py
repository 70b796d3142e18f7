"""The SQLite ledger's writer process, the child's side: one connection, one fenced ``INSERT`` per request.

Run as a script by the runtime's interpreter (``python -I -S sqlite_insert_child.py DATABASE``,
``sqlite_process.InsertProcess``), it imports nothing but a few modules of the standard library, so that it
starts in a few tens of milliseconds. Requests and replies are length-prefixed pickles over its standard input
and output (between a process and the child it started: nobody else writes them). See ``sqlite_process``.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import sqlite3
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

HEADER = struct.Struct("<I")  # each message: its length, then its pickle
_EPOCH_SQL = "SELECT epoch FROM fences WHERE strategy_key = ?"
BUSY_TIMEOUT_MS = 10_000  # as the runtime's own connection: another writer's transaction is waited for


def read_message(stream: BinaryIO) -> Any | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None  # the runtime closed its end, or is gone
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def write_message(stream: BinaryIO, reply: tuple[str, Any]) -> None:
    body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def _connect(database: str) -> sqlite3.Connection:
    # mode=rw: the runtime made the file and its tables; a file gone since is an error, not a new empty ledger.
    conn = sqlite3.connect(f"{Path(database).absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")  # as the runtime's connection: a commit survives a power cut
    return conn


def _execute(conn: sqlite3.Connection, request: tuple[str, list[Any], str, int]) -> tuple[str, Any]:
    sql, params, strategy_key, epoch = request
    before = conn.total_changes
    conn.execute(sql, params)
    stored = conn.total_changes - before
    if stored == 0:  # all duplicates, or a stale token: the epoch tells which
        row = conn.execute(_EPOCH_SQL, (strategy_key,)).fetchone()
        if row is None or row[0] != epoch:
            return ("fenced", row[0] if row else None)
    return ("ok", stored)


def serve(database: str, requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until the input ends."""
    try:
        conn: sqlite3.Connection | None = _connect(database)
        broken = None
    except (sqlite3.Error, OSError) as exc:
        conn, broken = None, f"cannot open {database}: {exc}"
    while (request := read_message(requests)) is not None:
        if conn is None:
            write_message(replies, ("error", broken))
            return
        try:
            reply = _execute(conn, request)
        except (sqlite3.Error, OSError) as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        write_message(replies, reply)
    if conn is not None:
        conn.close()


def main() -> None:
    # A Ctrl-C in a terminal, or a service manager's SIGTERM to every process of the group, is for the runtime:
    # it halts and commits what it holds through this child, which ends when the runtime closes its input.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by mistake may land in the replies
    with contextlib.suppress(BrokenPipeError):  # the runtime is gone: nobody to answer
        serve(sys.argv[1], requests, replies)


if __name__ == "__main__":
    main()
