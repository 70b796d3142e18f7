"""``livestrat run --desk`` as a person sees it: in a real terminal (tmux, fixed size), read off the screen.

tmux runs the command in a pseudo-terminal of 200x50; ``capture-pane -p`` is the screen as text; ``send-keys`` is
the person's keyboard. The tmux server is this test's own (its own socket), killed at the end.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.desk import EXAMPLES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
]
LIVESTRAT = Path(sys.executable).with_name("livestrat")
WIDTH, HEIGHT = 200, 50
COLUMNS = ("STRATEGY", "HEARTBEAT", "MODE", "PHASE", "POSITION", "PNL", "RISK", "NEAREST LIMIT", "LAST FILL")


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        # The size is the terminal's: COLUMNS and LINES (pytest's own, 80x24) would override it for the program.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args], check=True, capture_output=True, text=True, env=env
        ).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "desk")

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "desk", key)

    async def shows(self, *texts: str, timeout: float = 60.0) -> str:
        """The screen, once it shows every one of ``texts`` (an AssertionError with the screen after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if loop.time() > deadline:
                raise AssertionError(f"the screen does not show {texts}:\n{screen}")
            await asyncio.sleep(0.25)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"livestrat-test-{uuid.uuid4().hex[:8]}")
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)


async def test_the_local_run_in_a_terminal_shows_its_row_asks_before_halting_and_prints_the_summary_after(
    terminal: Terminal, tmp_path: Path
):
    command = shlex.join(
        [
            str(LIVESTRAT),
            "run",
            "--desk",
            "--speed",
            "60",
            "--workdir",
            str(tmp_path / "work"),
            str(EXAMPLES / "paper-ema-cross.yaml"),
        ]
    )
    # The shell stays after the run so that its last words stay on the screen.
    terminal.tmux(
        "new-session", "-d", "-s", "desk", "-x", str(WIDTH), "-y", str(HEIGHT), f"{command}; echo EXIT=$?; sleep 600"
    )
    screen = await terminal.shows("livestrat desk", "ema-cross-btc", "Running", "flat", timeout=120)
    header = next((line for line in screen.splitlines() if "HEARTBEAT" in line), "")
    positions = [header.find(column) for column in COLUMNS]  # every column, in this order, on one line
    assert -1 not in positions and positions == sorted(positions), screen
    row = next(line for line in screen.splitlines() if "/ema-cross-btc" in line and "paper" in line)
    assert "Running" in row and "Active" in row and "maxPosition" in row, row
    assert "h Halt" in screen and "q Quit" in screen  # the keys, in the footer

    # h: a dialog says what will happen; nothing happens yet.
    terminal.press("h")
    screen = await terminal.shows("halt local-run-", "Stops the local run", "Yes, halt (y)", "Cancel (n)")
    assert "Halted" not in screen
    # y: halted, with the desk's halt record in the detail.
    terminal.press("y")
    screen = await terminal.shows("HaltedFromDesk", timeout=60)
    row = next(line for line in screen.splitlines() if "/ema-cross-btc" in line and "paper" in line)
    assert "Halted" in row and "flat" in row, row
    # q: the dashboard closes and the run's summary is printed in the terminal as without it.
    terminal.press("q")
    screen = await terminal.shows("EXIT=0", timeout=60)
    assert "ema-cross-btc stopped after" in screen and "halted from the desk by the person running it" in screen
    assert "positions:      flat" in screen and "open orders:    0" in screen
