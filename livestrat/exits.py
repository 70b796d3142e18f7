"""How a ``livestrat`` command ends when the person or the pipe in front of it goes away.

- Ctrl-C: one line on stderr and exit status 130 (128 + SIGINT, what a shell reports for a
  command stopped by Ctrl-C), never a traceback, at whatever stage the command is in. A local
  run takes Ctrl-C over itself once its node runs (it halts the way a pod halts); before that,
  and after, this is what happens.
- A closed stdout (``livestrat fills … | head``): nothing more is written, no traceback, exit
  status 141 (128 + SIGPIPE, what a shell reports for a command its pipe closed). Python ignores
  SIGPIPE and raises BrokenPipeError instead; the Python documentation's way out (the note on
  SIGPIPE in the ``signal`` module's docs) is to point stdout at devnull, so the interpreter's own
  flush at exit does not raise again.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def interrupt_at_once(signum: int, frame: FrameType | None) -> None:
    """A SIGINT handler that raises KeyboardInterrupt where the program is, as Python's default does.

    Installed instead of the default so that ``asyncio.run`` does not install its own: that one only
    cancels the main task at its next ``await``, and a strategy module being imported, a node being
    built or a catalog being read would go on for as long as they take before Ctrl-C is heard.
    """
    raise KeyboardInterrupt


def take_ctrl_c() -> None:
    """Ctrl-C stops the command at once (``interrupt_at_once``) until a part of it takes the signal over."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt_at_once)


def interrupted(command: str) -> int:
    """``command`` (``livestrat run``) was stopped by Ctrl-C: one line, and 130."""
    print(f"{command}: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def stdout_closed() -> int:
    """stdout's reader is gone: write nothing more to it (the interpreter flushes it once more at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE
