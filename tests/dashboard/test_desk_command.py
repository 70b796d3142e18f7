"""``livestrat desk`` and ``livestrat run --desk`` at the command line, before any dashboard is drawn."""

from __future__ import annotations

import importlib.util

from livestrat.cli import main
from livestrat.desk import plugin
from tests.support.desk import EXAMPLES


def test_desk_without_a_kubeconfig_says_where_it_looked_and_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    assert main(["desk", "-A"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livestrat desk: no kubeconfig at") and "--kubeconfig or $KUBECONFIG" in err


def test_kubectl_livestrat_desk_is_the_same_dashboard_with_the_plugins_connection_options(tmp_path, capsys):
    args = plugin.parser().parse_args(["desk", "-A", "--kubeconfig", str(tmp_path / "nowhere")])
    assert args.all_namespaces and args.kubeconfig == str(tmp_path / "nowhere")
    assert plugin.main(["desk", "--kubeconfig", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith(f"kubectl livestrat desk: no kubeconfig at {tmp_path / 'nowhere'}")


def test_without_the_desk_extra_both_commands_say_how_to_install_it(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "textual" else real(name, *a))
    assert main(["desk"]) == 2
    assert "pip install 'livestrat[desk]'" in capsys.readouterr().err
    assert plugin.main(["desk"]) == 1
    assert "pip install 'livestrat[desk]'" in capsys.readouterr().err
    run = ["run", "--desk", "--workdir", str(tmp_path), str(EXAMPLES / "paper-ema-cross.yaml")]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert err.startswith("livestrat run --desk: the dashboard needs Textual") and not (tmp_path / "catalogs").exists()
