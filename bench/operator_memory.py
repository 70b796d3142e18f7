"""``livestrat operator`` with a memory report on SIGUSR1: where the resident bytes are, by retainer and by allocation.

    BENCH_OPERATOR_COMMAND=".venv/bin/python bench/operator_memory.py" ...   # what operator_bench.py --memory does

Runs the operator exactly as ``livestrat operator`` does (same arguments, same environment), with
``tracemalloc`` started first when ``LIVESTRAT_TRACEMALLOC_FRAMES`` is set (it costs CPU and memory of its own:
its RSS is not the operator's). On SIGUSR1 it writes a JSON report to the path written in the file
``LIVESTRAT_MEMORY_REPORT`` names:

- ``retained``: the bytes reachable from each of the operator's structures (kopf's watch caches one by one, the
  reconciler's per-strategy memory, kopf's per-object memories, the asyncio tasks with their coroutine frames),
  each object counted once, for the first structure in that order that reaches it (so a body shared by an index
  and a daemon counts for the index). ``sys.getsizeof`` of every object: what Python asked of its allocator.
- ``tracemalloc``: the live allocations by the line that made them (the innermost frame outside the standard
  library's json and asyncio internals), when tracing.
- ``allocator``: RSS, what glibc's malloc holds (``mallinfo2``: in use, free in its arenas), and RSS after
  ``malloc_trim(0)`` (which returns free pages of every arena to the kernel).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import signal
import sys
import tracemalloc
import types
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# What a walk never enters: code and classes are the program, not per-strategy data.
OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType, types.MethodType)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def pymalloc() -> dict[str, float]:
    """Python's small-object allocator (``sys._debugmallocstats``): its arenas, and how much of them holds objects."""
    import re
    import tempfile

    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    wanted = {
        "arenas_mib": r"# arenas allocated current\s*=\s*([\d,]+)",
        "allocated_blocks_mib": r"# bytes in allocated blocks\s*=\s*([\d,]+)",
        "available_blocks_mib": r"# bytes in available blocks\s*=\s*([\d,]+)",
        "unused_pools_mib": r"# bytes in \d+ unused pools\s*=\s*([\d,]+)",
    }
    found = {k: float(m.group(1).replace(",", "")) for k, p in wanted.items() if (m := re.search(p, text))}
    if "arenas_mib" in found:
        found["arenas_mib"] *= 1 << 20  # arenas of 1 MiB (Python 3.10+ on 64-bit)
    return {k: round(v / 2**20, 2) for k, v in found.items()}


def allocator() -> dict[str, Any]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    info = libc.mallinfo2()
    before = rss_kib()
    libc.malloc_trim(0)
    return {
        "pymalloc": pymalloc(),
        "rss_mib": before / 1024,
        "malloc_arena_mib": (info.arena + info.hblkhd) / 2**20,  # from the kernel: main arena (sbrk) + mmap'ed
        "malloc_in_use_mib": (info.uordblks + info.hblkhd) / 2**20,
        "malloc_free_mib": info.fordblks / 2**20,  # free inside malloc's arenas (fragmentation, or not yet reused)
        "rss_after_malloc_trim_mib": rss_kib() / 1024,
    }


# What a walk enters only from its own roots: the tasks and their frames are measured on their own.
RUNNING = (asyncio.Future, types.CoroutineType, types.FrameType, types.AsyncGeneratorType, types.GeneratorType)


class Walk:
    """Deep sizes of object graphs, each object counted once across every walk."""

    def __init__(self, stop: Iterable[Any]) -> None:
        self.seen: set[int] = {id(o) for o in stop}

    def size(self, roots: Iterable[Any], running: bool = False) -> tuple[int, int]:
        """(bytes, objects) reachable from ``roots`` and not seen before; through tasks and frames if ``running``."""
        total = count = 0
        stack = list(roots)
        while stack:
            obj = stack.pop()
            if id(obj) in self.seen or isinstance(obj, OPAQUE):
                continue
            if (not running and isinstance(obj, RUNNING)) or type(obj).__name__ == "Daemon":
                continue
            self.seen.add(id(obj))
            total += sys.getsizeof(obj)
            count += 1
            if isinstance(obj, types.FrameType):
                stack.extend(obj.f_locals.values())  # not its globals (the modules) nor its code
                if obj.f_back is not None:
                    stack.append(obj.f_back)
            else:
                stack.extend(gc.get_referents(obj))
        return total, count


def find(kind: str) -> list[Any]:
    return [o for o in gc.get_objects() if type(o).__name__ == kind]


def retained() -> dict[str, Any]:
    from kopf._core.engines import indexing

    indexers = next(o for o in gc.get_objects() if isinstance(o, indexing.OperatorIndexers))
    reconcilers = find("Reconciler")
    contexts = find("OperatorContext")
    memos = [o for o in gc.get_objects() if type(o).__name__ == "Memo" and "context" in o]
    # Shared by every handler call: the operator itself, not one strategy's data.
    loop = asyncio.get_event_loop()
    walk = Walk([*contexts, *memos, *[v for m in memos for v in m.values()], indexers, indexers.indices, loop])
    sizes: dict[str, Any] = {}

    def measure(name: str, roots: Callable[[], Iterable[Any]], running: bool = False) -> None:
        size, count = walk.size(roots(), running)
        sizes[name] = {"mib": round(size / 2**20, 2), "objects": count}

    for handler_id, indexer in indexers.items():
        measure(f"kopf index {handler_id}", lambda indexer=indexer: [indexer])
    for reconciler in reconcilers:
        for name in ("converged", "created", "conflicts", "secrets", "status_writes", "breach_writes", "halt_writes"):
            fields = [getattr(m, name) for m in reconciler.memories.values()]
            measure(f"reconciler memories: {name}", lambda fields=fields: fields)
        measure("reconciler memories: the rest", lambda r=reconciler: [r.memories])
        measure("reconciler uids, phases, failures", lambda r=reconciler: [r.uids, r.phases, r.failures])
    for context in contexts:
        measure("heartbeats (last essence per strategy)", lambda c=context: [c.heartbeats])
        measure("wakeups", lambda c=context: [c.wakeups, c.drains])
    memories = find("ResourceMemories")
    for memory in memories:
        items = memory._items
        bodies = [m.daemons_memory.live_fresh_body for m in items.values() if m.daemons_memory.live_fresh_body]
        measure(f"kopf daemons' live bodies ({len(bodies)})", lambda bodies=bodies: bodies)
        measure(f"kopf per-object memories ({len(items)})", lambda m=memory: [m._items])
    tasks = list(asyncio.all_tasks(asyncio.get_event_loop()))
    names = Counter(getattr(t.get_coro(), "__qualname__", type(t.get_coro()).__name__) for t in tasks)
    daemons = [d for m in memories for i in m._items.values() for d in i.daemons_memory.running_daemons.values()]
    measure(f"kopf daemon records ({len(daemons)})", lambda: daemons)
    measure(
        f"asyncio tasks ({len(tasks)}) and their frames",
        lambda: [x for t in tasks for x in (t, t.get_coro())],
        running=True,
    )
    sizes["tasks by coroutine"] = dict(names.most_common(12))
    return sizes


def traced(limit: int = 30) -> dict[str, Any]:
    if not tracemalloc.is_tracing():
        return {}
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    )
    generic = ("/json/", "/asyncio/", "/copy.py", "/dataclasses.py", "<frozen", "/abc.py", "/typing.py")
    by_site: Counter[str] = Counter()
    for stat in snapshot.statistics("traceback"):
        frames = list(reversed(stat.traceback))  # most recent first
        # The line to blame: the innermost frame outside the generic machinery, and what called it.
        blame = next((i for i, f in enumerate(frames) if not any(g in f.filename for g in generic)), 0)
        site = " < ".join(
            f"{f.filename.split('site-packages/')[-1].split('wt-mem/')[-1]}:{f.lineno}"
            for f in frames[blame : blame + 3]
        )
        by_site[site] += stat.size
    total = sum(by_site.values())
    return {
        "traced_mib": round(total / 2**20, 2),
        "by_site_mib": {site: round(size / 2**20, 2) for site, size in by_site.most_common(limit)},
    }


def census(limit: int = 15) -> dict[str, Any]:
    """Every object the garbage collector tracks (containers: dicts, lists, frames, instances), by type."""
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        sizes[name] += sys.getsizeof(obj)
        counts[name] += 1
    return {name: {"mib": round(size / 2**20, 2), "objects": counts[name]} for name, size in sizes.most_common(limit)}


def report(path: str) -> None:
    """Never raises: it runs inside whatever the operator was doing when the signal came."""
    try:
        gc.collect()
        data: dict[str, Any] = {"rss_before_report_mib": rss_kib() / 1024}
        data |= {"retained": retained(), "census": census(), "tracemalloc": traced()}
        data["allocator"] = allocator()  # last: malloc_trim changes what it measures
    except Exception as exc:
        data = {"error": f"{type(exc).__name__}: {exc}"}
    Path(Path(path).read_text().strip()).write_text(json.dumps(data, indent=1))


def main() -> None:
    frames = int(os.environ.get("LIVESTRAT_TRACEMALLOC_FRAMES", "0") or 0)
    if frames:
        tracemalloc.start(frames)
    out = os.environ["LIVESTRAT_MEMORY_REPORT"]
    signal.signal(signal.SIGUSR1, lambda *_: report(out))  # runs on the loop's thread, between two of its steps
    from livestrat.cli import main as livestrat

    sys.argv = ["livestrat", "operator", *sys.argv[1:]]
    livestrat()


if __name__ == "__main__":
    main()
