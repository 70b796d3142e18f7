"""``livestrat demo`` refuses, before starting anything, what it cannot show, saying what to do."""

from __future__ import annotations

import pytest

from livestrat.cli import main
from livestrat.demo.cluster import DemoError, hold_workdir
from tests.support.desk import EXAMPLES


def test_a_directory_without_manifests_is_refused(tmp_path, capsys):
    assert main(["demo", "--examples", str(tmp_path), "--workdir", str(tmp_path / "w")]) == 2
    assert "no LiveStrategy manifest (*.yaml) there" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing was started or written


def test_examples_that_all_need_a_venue_are_refused_with_what_each_needs(tmp_path, capsys):
    live = EXAMPLES / "live-binance-testnet.yaml"
    assert main(["demo", "--examples", str(live), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "runs without a venue or a cluster" in err and "live-binance-testnet.yaml: live mode: needs binance" in err


def test_a_second_demo_on_the_same_workdir_is_refused_while_the_first_runs(tmp_path):
    first = hold_workdir(tmp_path)
    try:
        with pytest.raises(DemoError, match=r"another livestrat demo is running in .*--workdir"):
            hold_workdir(tmp_path)
    finally:
        first.close()
    hold_workdir(tmp_path).close()  # free again once the first has stopped


def test_ctrl_c_before_the_demo_has_started_ends_without_a_traceback(monkeypatch, capsys):
    import livestrat.demo.main

    def interrupted(args):
        raise KeyboardInterrupt  # as a Ctrl-C while its modules are still being imported

    monkeypatch.setattr(livestrat.demo.main, "run_demo", interrupted)
    assert main(["demo"]) == 130
    assert capsys.readouterr().err == "livestrat demo: interrupted before it started; nothing was left running\n"
