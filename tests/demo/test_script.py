"""What the demo prints: the strategies it applied, why the others were skipped, what to type elsewhere."""

from __future__ import annotations

from pathlib import Path

from livestrat.demo import script
from livestrat.demo.examples import choose
from tests.support.desk import EXAMPLES


def test_the_commands_to_try_name_the_applied_strategies_and_the_kubeconfig(tmp_path):
    chosen = choose(EXAMPLES, speed=60)
    text = script.what_to_try(tmp_path / "kubeconfig.yaml", chosen, {}, tmp_path)
    assert f"export KUBECONFIG={tmp_path / 'kubeconfig.yaml'}" in text
    assert "kubectl scale lstrat ema-cross-btc --replicas=0" in text
    assert "kubectl scale lstrat ema-cross-halted --replicas=1" in text
    assert "kubectl livestrat desk" in text and "Ctrl-C" in text
    started = script.started("http://127.0.0.1:1", chosen, {}, 60)
    assert "applied paper-ema-cross.yaml: ema-cross-btc, replaying its sample at 60x" in started
    assert "skipped live-binance-testnet.yaml" in started


def test_without_kubectl_it_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(script, "TOOLS_KUBECTL", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(tmp_path))
    text = script.what_to_try(Path("kubeconfig.yaml"), choose(EXAMPLES, speed=60), {}, tmp_path)
    assert "kubectl is not installed: `make tools` downloads it" in text


def test_an_example_the_api_refused_is_reported_with_the_reason_and_not_offered(tmp_path):
    chosen = choose(EXAMPLES, speed=60)
    refused = {"ema-cross-btc": 'spec.mode: Unsupported value: "x"'}
    assert 'refused paper-ema-cross.yaml (ema-cross-btc): spec.mode: Unsupported value: "x"' in script.started(
        "http://127.0.0.1:1", chosen, refused, 60
    )
    assert "scale lstrat ema-cross-btc " not in script.what_to_try(tmp_path / "k", chosen, refused, tmp_path)
