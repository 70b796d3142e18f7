"""The fill spool: fills kept durably on the pod's own disk until the ledger database has them.

A live venue reports a fill once. While PostgreSQL cannot take it (an outage, a partition, a
restart of the database), the fill must not live in the process's memory alone: the spool
appends it to a file in the runtime's state directory and ``fdatasync``s it before it counts
as durable. The ledger's writer (``writer.WriteBehind``) spools every fill the database has not
committed yet, in groups (one write and one sync for everything recorded since the last one),
through the ledger's I/O process (``io_process``); the database writer runs beside it, and a fill is durable as soon as
either has it. Once the database has committed a segment's fills the segment is emptied (the
file truncated) or deleted.

At start, before the runtime trades, the ledger reads what an earlier run left here (killed,
crashed, stopped while the database was away) and commits it (``Ledger.open``): every fill is
written once, by the ledger's idempotent key, however many restarts happened in between.

Format: JSON lines in segment files ``<number>.jsonl``, one fill a line
(``{"v": 1, "fill": {column: value}}``, decimals as their exact text), under
``<stateDir>/ledger-spool/<strategy>-<hash>/``, locked with ``flock`` on ``.lock`` so that two
processes never share one spool. A line cut short by a crash (no newline yet) was never synced,
so never durable, and is skipped; a line that cannot be read anywhere else is logged in full and
its segment kept aside as ``<number>.jsonl.unreadable`` for a human.

What it does not survive: the loss of the disk itself (the pod's volume deleted, or a node's
local disk gone with the node); see docs/ledger.md, "What is guaranteed".
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from strategy_runtime.ledger.errors import LedgerError
from strategy_runtime.ledger.io_process import IoProcess, IoProcessError
from strategy_runtime.ledger.records import COLUMNS, FillRecord, fill_from_columns, strategy_file_stem

logger = logging.getLogger("livestrat.ledger")

T = TypeVar("T")

SPOOL_DIR_NAME = "ledger-spool"
FORMAT_VERSION = 1
# A segment takes new fills until it holds this many lines; then the next one starts (during an
# outage segments pile up; each is deleted once the database has all of its fills).
SEGMENT_FILLS = 2_000
SUFFIX = ".jsonl"


def spool_directory(state_dir: str | os.PathLike[str], strategy_key: str) -> Path:
    """Where a strategy's spool lives in a runtime's state directory."""
    return Path(state_dir) / SPOOL_DIR_NAME / strategy_file_stem(strategy_key)


class SpoolBusy(LedgerError):
    """Another process uses this spool: two runtimes share one state directory."""


def encode(fill: FillRecord) -> bytes:
    row = dict(zip(COLUMNS, fill.as_row(), strict=True))
    return json.dumps({"v": FORMAT_VERSION, "fill": row}, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> FillRecord:
    record = json.loads(line)
    if record.get("v") != FORMAT_VERSION:
        raise ValueError(f"unknown spool format version {record.get('v')!r}")
    row: dict[str, Any] = record["fill"]
    return fill_from_columns(row)  # a line written before a column existed reads it as NULL


@dataclass
class _Segment:
    number: int
    path: Path
    fd: int
    size: int = 0
    lines: int = 0
    end_seq: int = 0  # the writer's sequence number after its last fill

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class Leftovers:
    """What an earlier run left in the spool: its fills, and its segment files."""

    fills: list[FillRecord]
    segments: list[Path]
    unreadable: list[Path]


def read_spool(directory: Path) -> Leftovers:
    """The fills in a spool directory, oldest segment first (reading needs no lock: lines are only appended)."""
    segments = sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    fills: list[FillRecord] = []
    unreadable = [segment for segment in segments if not _read_segment(segment, fills)]
    return Leftovers(fills, segments, unreadable)


def _read_segment(path: Path, into: list[FillRecord]) -> bool:
    """Append the segment's fills to ``into``; False if a line could not be read (logged in full)."""
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")
    if tail:
        logger.warning(
            "ledger: %s ends with a line cut short (%d bytes): a write the process never finished, so never "
            "acknowledged as durable; skipped",
            path,
            len(tail),
        )
    readable = True
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            into.append(decode(line))
        except (ValueError, TypeError, KeyError) as exc:
            readable = False
            logger.error("ledger: %s line %d cannot be read (%s): %r", path, number, exc, line[:2000])
    return readable


class FillSpool:
    """One strategy's spool. ``write`` and ``drop``, the writer's, are coroutines that never block the event loop;
    of the rest, every method but ``call`` does blocking I/O (``call`` runs one on the spool's thread).

    The appends and their syncs, and the file operations of ``drop``, run in the ledger's I/O process
    (``io_process``: no thread of this process takes the interpreter's lock for them, docs/ledger.md). ``sync``
    replaces the call that makes a write durable (``os.fdatasync``) for tests: a spool given one does all of it on
    its thread instead (``append``, ``release``), where the replacement runs.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_fills: int = SEGMENT_FILLS,
        sync: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._segment_fills = segment_fills
        self._sync = sync or os.fdatasync
        self._io = IoProcess(["spool"]) if sync is None else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-spool")
        self._lock_fd: int | None = None
        self._active: _Segment | None = None
        self._full: list[_Segment] = []  # no more lines: deleted once the database has their fills
        self._next_number = 1

    def __repr__(self) -> str:
        return f"<FillSpool {self.directory}>"

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the spool's own thread: the event loop never waits on the disk."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # ------------------------------------------------------------------ opening and draining
    def open(self) -> Leftovers:
        """Lock the spool (``SpoolBusy`` if another process has it) and read what earlier runs left."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(
                f"the fill spool {self.directory} is in use by another process: two runtimes share one state "
                "directory; give each its own"
            ) from None
        self._lock_fd = fd
        leftovers = read_spool(self.directory)
        numbers = [int(p.stem) for p in leftovers.segments if p.stem.isdigit()]
        self._next_number = max(numbers, default=0) + 1
        return leftovers

    def discard(self, leftovers: Leftovers) -> None:
        """The leftovers are committed: delete their segments (one with an unreadable line is kept aside)."""
        for segment in leftovers.segments:
            if segment in leftovers.unreadable:
                segment.rename(segment.with_name(segment.name + ".unreadable"))
            else:
                segment.unlink(missing_ok=True)
        self._sync_directory()

    # ------------------------------------------------------------------ writing
    async def start(self) -> None:
        """Start the I/O process now, so that the first write does not wait for it (a failure: the write retries)."""
        if self._io is not None:
            try:
                await self._io.start()
            except IoProcessError as exc:
                logger.warning("ledger: the spool %s: %s; its first write tries again", self.directory, exc)

    async def write(self, fills: Sequence[FillRecord], first_seq: int) -> None:
        """Append ``fills`` (the writer's sequence numbers ``first_seq`` on) and sync; durable when it returns.

        A failure raises (``OSError``): nothing of it counts as durable. The segment is cut back to its last synced
        line, or, where that cannot be known or done, given up for a new one (a partial line at its end is never
        acknowledged and is skipped when read)."""
        if not fills:
            return
        if self._io is None:
            await self.call(self.append, fills, first_seq)
            return
        segment = self._active or await self.call(self._new_segment)
        data = b"".join(encode(fill) for fill in fills)
        try:
            reply = await self._io.request(("append", str(segment.path), data, segment.size))
        except BaseException as exc:
            # It could not open the segment, the process died, or the request was cancelled (the ledger closing):
            # what reached the file is not known, and nothing more may follow it there.
            self._give_up(segment)
            if isinstance(exc, IoProcessError):
                raise OSError(str(exc)) from None
            raise
        if reply[0] == "failed":
            if not reply[2]:
                self._give_up(segment)
            raise OSError(reply[1])
        self._appended(segment, len(data), len(fills), first_seq)

    def append(self, fills: Sequence[FillRecord], first_seq: int) -> None:
        """``write`` on the spool's thread (a spool given its own ``sync``)."""
        if not fills:
            return
        segment = self._active or self._new_segment()
        data = b"".join(encode(fill) for fill in fills)
        try:
            written = 0
            while written < len(data):
                written += os.write(segment.fd, data[written:])
            self._sync(segment.fd)
        except OSError:
            self._undo(segment)
            raise
        self._appended(segment, len(data), len(fills), first_seq)

    def _appended(self, segment: _Segment, size: int, lines: int, first_seq: int) -> None:
        segment.size += size
        segment.lines += lines
        segment.end_seq = first_seq + lines
        if segment.lines >= self._segment_fills:
            self._full.append(segment)
            self._active = None

    def _undo(self, segment: _Segment) -> None:
        """A failed write (a full disk): cut the segment back to its last synced line, or give it up."""
        try:
            os.ftruncate(segment.fd, segment.size)
        except OSError:
            self._give_up(segment)

    def _give_up(self, segment: _Segment) -> None:
        # A partial line may follow its last synced one: start a new segment next time; reading this one at the
        # next start skips the unreadable line (never acknowledged as durable). Dropped once its fills commit.
        if segment is self._active:
            self._full.append(segment)
            self._active = None

    def _new_segment(self) -> _Segment:
        path = self.directory / f"{self._next_number:012d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._next_number += 1
        self._sync_directory()  # the new file's name must survive a crash as well as its lines
        self._active = _Segment(int(path.stem), path, fd)
        return self._active

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def releasable(self, committed_seq: int) -> bool:
        """Whether ``release(committed_seq)`` would drop anything. No I/O, for the event loop's thread: read between
        two of the spool's calls (its one caller, ``WriteBehind.run_spool``, awaits each), so that a commit of fills
        the spool never held costs no request to the I/O process."""
        return any(s.end_seq <= committed_seq for s in self._full) or self._active_released_by(committed_seq)

    def _active_released_by(self, committed_seq: int) -> bool:
        active = self._active
        return active is not None and active.size > 0 and active.end_seq <= committed_seq

    async def drop(self, committed_seq: int) -> None:
        """The database has every fill before ``committed_seq``: drop the segments that hold nothing else.

        A file operation that fails leaves its segment for a later call (its fills are committed: at worst written
        to the ledger again at the next start, where they are already)."""
        if self._io is None:
            await self.call(self.release, committed_seq)
            return
        try:
            for segment in [s for s in self._full if s.end_seq <= committed_seq]:
                await self._io.request(("unlink", str(segment.path)))
                self._full.remove(segment)
                segment.close()
            active = self._active
            if active is not None and self._active_released_by(committed_seq):
                # Emptied in place, not synced: should the truncation be lost in a crash, the lines come
                # back and are written to the ledger again, where they are already (idempotent).
                try:
                    await self._io.request(("truncate", str(active.path)))
                except IoProcessError:
                    # Emptied or not, its size is not known now: no more lines there (its fills are committed; it
                    # is dropped with the next call).
                    self._give_up(active)
                    raise
                active.size = active.lines = 0
        except IoProcessError as exc:
            logger.warning("ledger: the spool %s could not drop committed fills yet: %s", self.directory, exc)

    def release(self, committed_seq: int) -> None:
        """``drop`` on the spool's thread (a spool given its own ``sync``)."""
        for segment in [s for s in self._full if s.end_seq <= committed_seq]:
            self._full.remove(segment)
            segment.close()
            segment.path.unlink(missing_ok=True)
        active = self._active
        if active is not None and self._active_released_by(committed_seq):
            # Emptied in place, not synced: should the truncation be lost in a crash, the lines come
            # back and are written to the ledger again, where they are already (idempotent).
            os.ftruncate(active.fd, 0)
            active.size = active.lines = 0

    async def aclose(self) -> None:
        """``close``, the I/O process ended first (it finishes the request in hand)."""
        if self._io is not None:
            await self._io.stop()
        self.close()

    def close(self) -> None:
        """Close the files and unlock; segments still holding uncommitted fills stay for the next start."""
        if self._io is not None:
            self._io.abandon()  # its input closed: it ends by itself (``aclose`` waits for it)
        for segment in [*self._full, *([self._active] if self._active else [])]:
            segment.close()
            if segment.size == 0:
                segment.path.unlink(missing_ok=True)
        self._full, self._active = [], None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._executor.shutdown(wait=False)
