"""How soon the event loop's thread lets a waiting thread have the interpreter: 0.2 ms in a runtime, not 5 ms.

The runtime's ledger wrote from a thread of its own (SQLite: the connection's thread; PostgreSQL: the
fill spool's), and every statement it runs gives the interpreter's lock up and takes it back. Its fills'
writes now go to the ledger's I/O process (``ledger/io_process.py``); what still runs on a thread (an SQLite
ledger's fence, reads and halt records; the spool's opening and new segments; NautilusTrader's and the
libraries' own threads) meets the same. While the
event loop is busy (a replay at full speed, a burst of market data) each take-back waits for the loop's
thread. CPython's switch interval (``sys.setswitchinterval``, 5 ms by default) is how long a waiting thread
waits before asking the holder to let go; until then it only waits for the holder to let go on its own.
uvloop does that around its poll and takes the lock back for each of libuv's callbacks, many times a
millisecond, and each time the interpreter wakes the waiting thread (a futex, on a virtual machine an
interrupt to the other CPU), which finds the lock taken again and sleeps: tens of wake-ups for each of the
ledger's statements, paid by the loop's thread.

Measured (docs/performance.md, "seventh round"): a 20,000-bar replay with 1,108 fills made 20,247 futex calls
and 6,542 context switches at 5 ms, 10,207 and 2,936 at 0.2 ms; the runtime went from 0.66 of the bare node's speed
to 0.75 (the loop's CPU 3.22 to 2.84 s). 0.1 and 0.05 ms measured about the same as 0.2; 0.5 and 1 ms less well.

A shorter interval only matters while some thread waits for the lock: a runtime's threads are idle but for
the ledger's short calls, so the loop's thread is not made to share its time with anything that computes.
It is the process's setting; a runtime sets it while it runs and gives back what it found when the last
runtime of the process ends (tests and embedding programs run several).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

SWITCH_INTERVAL_SECONDS = 0.0002

_lock = threading.Lock()
_users = 0
_found = 0.0


@contextlib.contextmanager
def prompt_thread_switches() -> Iterator[None]:
    """The short interval for as long as any user is inside; the interval found given back by the last to leave."""
    global _users, _found
    with _lock:
        if _users == 0:
            _found = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setswitchinterval(_found)
