"""``kubectl livestrat ...`` as a person types it: the real kubectl finds the installed ``kubectl-livestrat`` on the
PATH and runs it, with the person's kubeconfig (the emulator's address and that person's token)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.desk import kubectl_binary

# The console script pip installs next to the interpreter ([project.scripts] kubectl-livestrat).
PLUGIN = Path(sys.executable).with_name("kubectl-livestrat")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _environment(kubeconfig: Path) -> dict[str, str]:
    assert PLUGIN.exists(), f"no {PLUGIN}: install the package (make) so that its console scripts exist"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), PATH=f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("LIVESTRAT_LEDGER_DSN", None)
    return env


async def spawn(*args: str, kubeconfig: Path) -> asyncio.subprocess.Process:
    """``kubectl livestrat ARGS`` left running (``top -w``, ``logs -f``): read its stdout, then terminate it."""
    binary = kubectl_binary()
    assert binary is not None, "no kubectl: run `make tools` (installs the pinned kubectl into .tools/bin)"
    return await asyncio.create_subprocess_exec(
        binary,
        "livestrat",
        *args,
        env=_environment(kubeconfig),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def kubectl_livestrat(
    *args: str, kubeconfig: Path, stdin: str | None = None, timeout: float = 120, cwd: Path | None = None
) -> Ran:
    binary = kubectl_binary()
    assert binary is not None, "no kubectl: run `make tools` (installs the pinned kubectl into .tools/bin)"
    env = _environment(kubeconfig)
    process = await asyncio.create_subprocess_exec(
        binary,
        "livestrat",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else None), timeout)
    return Ran(process.returncode or 0, out.decode(), err.decode())
