"""A newcomer's first hour with ``livestrat run`` and ``livestrat backtest``, as real processes.

Each story was found by trying the project as a new user would: Ctrl-C at every stage ends in one
line and exit status 130 (the replay's own Ctrl-C halt stays as it was); output piped to ``head``
ends without a traceback; ``--version``; ``--log-level`` shows the strategy's own log lines;
progress on stderr while a large sample is written and while a backtest runs; a strategy in a file
next to the manifest (or in ``--path DIR``) runs with one command; the halted example says it is
halted in a cluster.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from livestrat.cli import main
from tests.support.runtime_process import EXAMPLE, LIVESTRAT, ROOT

INTERRUPTED = "livestrat run: interrupted (Ctrl-C)"


def manifest(tmp_path: Path, *, bars: int = 3000, strategy: str | None = None) -> Path:
    """The paper example with ``bars`` sample bars, its strategy taken from ``strategy`` (a module in tmp_path)."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["data"]["sample"]["bars"] = bars
    if strategy is not None:
        doc["spec"]["strategy"]["strategyPath"] = f"{strategy}:EMACross"
        doc["spec"]["strategy"]["configPath"] = f"{strategy}:EMACrossConfig"
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_run(tmp_path: Path, file: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [LIVESTRAT, "run", str(file), "--workdir", str(tmp_path / "work"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def interrupt_when(process: subprocess.Popen[str], stderr_line: str) -> tuple[str, str]:
    """Send SIGINT once stderr shows a line starting with ``stderr_line``; stdout and the rest of stderr."""
    assert process.stderr is not None
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith(stderr_line):
                break
        else:
            raise AssertionError(f"never saw {stderr_line!r}; stderr:\n{''.join(seen)}")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return out, "".join(seen) + err


def assert_one_line_and_130(process: subprocess.Popen[str], err: str) -> None:
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    others = [line for line in err.splitlines() if not line.startswith("  ")]  # progress lines are indented
    assert others == [INTERRUPTED], err


@pytest.mark.slow
def test_ctrl_c_while_the_sample_is_written_ends_in_one_line_and_130(tmp_path):
    process = start_run(tmp_path, manifest(tmp_path, bars=200_000))
    out, err = interrupt_when(process, "  sample:")
    assert_one_line_and_130(process, err)
    assert "running " not in out  # it stopped there: no run started
    catalog = tmp_path / "work" / "catalogs" / "ema-cross-btc"
    assert not list(catalog.glob(".livestrat-sample-*")), "the scratch directory is removed"


@pytest.mark.slow
def test_ctrl_c_before_the_replay_starts_ends_in_one_line_and_130(tmp_path):
    # a strategy module that takes its time to import (a heavy dependency, a slow disk): the node is being built
    (tmp_path / "slow_strategy.py").write_text(
        textwrap.dedent(
            """
            import sys
            import time

            print("  importing the strategy", file=sys.stderr, flush=True)
            time.sleep(120)
            from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig
            """
        )
    )
    process = start_run(tmp_path, manifest(tmp_path, bars=300, strategy="slow_strategy"))
    out, err = interrupt_when(process, "  importing the strategy")
    assert_one_line_and_130(process, err)
    assert "running ema-cross-btc in paper mode" in out
    assert "stopped after" not in out  # no summary: nothing ran


@pytest.mark.slow
def test_ctrl_c_during_the_replay_still_halts_like_a_pod(tmp_path):
    process = start_run(tmp_path, manifest(tmp_path), "--speed", "6000")  # 3,000 bars in 30 s
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("  replay "):  # the replay's first progress line
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "(received SIGINT)" in out and re.search(r"^  positions:\s+flat$", out, re.MULTILINE)
    assert "Traceback" not in err and INTERRUPTED not in err


@pytest.mark.slow
def test_output_into_a_closed_pipe_ends_quietly_with_141(tmp_path):
    # the reader is gone before the first byte (what `livestrat crd | head -n 1` meets a little later)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([LIVESTRAT, "crd"], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert result.stderr.decode() == ""  # no traceback, no "Exception ignored" at exit
    assert result.returncode == 141  # 128 + SIGPIPE, as a shell reports a command its pipe closed


@pytest.mark.slow
def test_a_run_piped_to_head_ends_without_a_traceback(tmp_path):
    shell = f"set -o pipefail; {LIVESTRAT} run {EXAMPLE} --workdir {tmp_path} | head -n 1"
    result = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("wrote a synthetic sample catalog") and len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.returncode in (0, 141)  # 0 when the whole output fitted in the pipe before head left


def test_version_names_livestrat_and_nautilus_trader(capsys):
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    expected = f"livestrat {metadata.version('livestrat')} (NautilusTrader {metadata.version('nautilus_trader')})"
    assert capsys.readouterr().out.strip() == expected


LOUD_STRATEGY = """
from nautilus_trader.examples.strategies import ema_cross


class EMACross(ema_cross.EMACross):
    def on_bar(self, bar):
        self.log.info(f"LOUD-STRATEGY saw a bar closing at {bar.close}")
        super().on_bar(bar)


EMACrossConfig = ema_cross.EMACrossConfig
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "backtest"])
def test_log_level_shows_the_strategys_own_log_lines(tmp_path, command):
    (tmp_path / "loud_strategy.py").write_text(LOUD_STRATEGY)
    file = manifest(tmp_path, bars=300, strategy="loud_strategy")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}

    def output(*args: str) -> str:
        argv = [LIVESTRAT, command, str(file), "--workdir", str(tmp_path / "work"), *args]
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    assert "LOUD-STRATEGY" not in output()  # quiet by default, as before
    assert "LOUD-STRATEGY saw a bar closing at" in output("--log-level", "info")


@pytest.mark.slow
def test_a_backtest_of_a_large_sample_says_how_far_it_is(tmp_path):
    file = manifest(tmp_path, bars=60_000)
    result = subprocess.run(
        [LIVESTRAT, "backtest", str(file), "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  sample: BTCUSDT.BINANCE bars generated: [\d,]+/60,000 \(\d+%\)$", result.stderr, re.M)
    assert re.search(r"^  backtest: (events replayed: [\d,]+/[\d,]+ \(\d+%\)|loading)", result.stderr, re.M)
    assert "backtest: events replayed" not in result.stdout  # the result stays alone on stdout
    # counts with separators and seconds to a tenth, as livestrat run writes them
    assert re.search(r"^backtest of ema-cross-btc over \S+: 60,000 events in \d+\.\ds$", result.stdout, re.M)


MY_STRATEGY = """
import sys

from nautilus_trader.examples.strategies.ema_cross import EMACross as _EMACross, EMACrossConfig


class EMACross(_EMACross):
    def on_start(self):
        print("my own strategy starts", file=sys.stderr, flush=True)
        super().on_start()
"""


@pytest.mark.slow
def test_a_strategy_in_a_file_next_to_the_manifest_runs_with_one_command(tmp_path):
    desk = tmp_path / "desk"
    desk.mkdir()
    (desk / "my_strategy.py").write_text(MY_STRATEGY)
    file = manifest(tmp_path, bars=300, strategy="my_strategy").rename(desk / "strategy.yaml")
    result = subprocess.run(
        [LIVESTRAT, "run", str(file), "--workdir", str(tmp_path / "work"), "--quiet"],
        cwd=ROOT,  # not the manifest's directory, and no PYTHONPATH
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "my own strategy starts" in result.stderr
    assert re.search(r"^  fills:\s+[1-9]", result.stdout, re.MULTILINE)


@pytest.mark.slow
def test_path_adds_a_directory_of_strategies_elsewhere(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    (library / "my_strategy.py").write_text(MY_STRATEGY)
    file = manifest(tmp_path, bars=300, strategy="my_strategy")

    def backtest(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [LIVESTRAT, "backtest", str(file), "--workdir", str(tmp_path / "work"), "--quiet", *args]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    without = backtest()
    assert without.returncode == 2 and "my_strategy" in without.stderr
    found = backtest("--path", str(library))
    assert found.returncode == 0, found.stdout + found.stderr
    assert "my own strategy starts" in found.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "backtest"])
def test_the_halted_example_run_locally_says_it_is_halted_in_a_cluster_and_runs_on_paper(tmp_path, command):
    argv = [LIVESTRAT, command, "examples/halted.yaml", "--workdir", str(tmp_path), "--quiet"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    note = (
        "note: examples/halted.yaml has spec.replicas: 0: applied to a cluster, ema-cross-halted is halted (no pod "
        "runs) until `kubectl scale livestrategy/ema-cross-halted --replicas=1`; "
        f"livestrat {command} runs it anyway, on paper"
    )
    assert note in result.stdout.splitlines()
    assert re.search(r"^  fills:\s+[1-9]", result.stdout, re.MULTILINE)

    paper = subprocess.run(
        [LIVESTRAT, command, str(EXAMPLE), "--workdir", str(tmp_path), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert paper.returncode == 0 and "replicas: 0" not in paper.stdout  # a running spec gets no note
