"""``spec.strategy.config`` against the strategy's config class: what NautilusTrader lets through, refused.

NautilusTrader builds a config with msgspec, which ignores keys the class does not have and names
only the first missing field; a strategy given another strategy's config class is created all the
same and fails, if at all, on its first event. Each is a strategy running with settings its author
did not write, so each is a configuration error (the runtime's ``InvalidSpec``, exit 2), found
before anything runs and told all at once.
"""

from __future__ import annotations

import copy

import pytest

from livestrat.api.spec import StrategySource
from strategy_runtime.strategy_source import StrategyLoadError, load_strategy
from tests.support.runtime import EMA_CROSS


def source(config: dict, **paths: str) -> StrategySource:
    return StrategySource.model_validate({**EMA_CROSS, **paths, "config": config})


def config(**changes) -> dict:
    result = copy.deepcopy(EMA_CROSS["config"])
    for key, value in changes.items():
        if value is None:
            result.pop(key)
        else:
            result[key] = value
    return result


def refusal(config: dict, **paths: str) -> str:
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy(source(config, **paths))
    return str(caught.value)


def test_a_misspelt_key_is_refused_with_the_key_it_meant():
    cfg = config(fast_ema_period=None)
    cfg["fast_ema_perod"] = 5
    message = refusal(cfg)
    assert "spec.strategy.config.fast_ema_perod" in message
    assert "did you mean 'fast_ema_period'" in message
    assert "EMACrossConfig" in message


def test_every_unknown_key_is_named_at_once():
    cfg = config()
    cfg["fast_ema_perod"] = 5
    cfg["slow_emaperiod"] = 30
    message = refusal(cfg)
    assert "fast_ema_perod" in message and "slow_emaperiod" in message


def test_a_key_with_nothing_close_lists_what_the_class_takes():
    cfg = config()
    cfg["colour"] = "blue"
    message = refusal(cfg)
    assert "spec.strategy.config.colour" in message
    assert "fast_ema_period" in message  # what is allowed


def test_every_missing_field_is_named_at_once():
    message = refusal(config(instrument_id=None, bar_type=None, trade_size=None))
    for name in ("instrument_id", "bar_type", "trade_size"):
        assert f"spec.strategy.config.{name}" in message
    assert "required" in message


def test_a_config_class_the_strategy_does_not_take_is_refused():
    # EMACross takes an EMACrossConfig; EMACrossBracketConfig shares most field names, so without the check
    # the strategy is created and misses what only its own class has when it first reads it.
    bracket = {
        "instrument_id": EMA_CROSS["config"]["instrument_id"],
        "bar_type": EMA_CROSS["config"]["bar_type"],
        "trade_size": "0.010",
    }
    message = refusal(bracket, configPath="nautilus_trader.examples.strategies.ema_cross_bracket:EMACrossBracketConfig")
    assert "spec.strategy.configPath" in message
    assert "EMACrossConfig" in message  # what the strategy takes


def test_a_subclass_of_the_strategy_config_class_is_accepted():
    loaded = load_strategy(
        source(
            config(),
            configPath="tests.support.strategies:EMACrossConfigWithNote",
            strategyPath=EMA_CROSS["strategyPath"],
        )
    )
    assert loaded.strategy.config.__class__.__name__ == "EMACrossConfigWithNote"


def test_the_example_config_loads():
    loaded = load_strategy(source(config()))
    assert loaded.strategy.config.fast_ema_period == 10


TWAP = "nautilus_trader.examples.algorithms.twap"


def with_algorithms(*configs: dict) -> StrategySource:
    algorithms = [
        {"algorithmPath": f"{TWAP}:TWAPExecAlgorithm", "configPath": f"{TWAP}:TWAPExecAlgorithmConfig", "config": c}
        for c in configs
    ]
    return StrategySource.model_validate({**EMA_CROSS, "execAlgorithms": algorithms})


def test_execution_algorithms_load_with_their_config_as_the_backtest_takes_them():
    loaded = load_strategy(with_algorithms({}, {"exec_algorithm_id": "TWAP-2"}))
    assert [a.id.value for a in loaded.exec_algorithms] == ["TWAP", "TWAP-2"]
    assert [i.exec_algorithm_path for i in loaded.importable_exec_algorithms] == [f"{TWAP}:TWAPExecAlgorithm"] * 2


def test_a_misspelt_execution_algorithm_key_is_refused_with_the_key_it_meant():
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy(with_algorithms({"exec_algorithm_idd": "TWAP"}))
    assert "spec.strategy.execAlgorithms[0].config.exec_algorithm_idd" in str(caught.value)
    assert "did you mean 'exec_algorithm_id'?" in str(caught.value)


def test_two_execution_algorithms_with_one_id_are_refused():
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy(with_algorithms({}, {}))
    assert "execAlgorithms[1]" in str(caught.value) and "'TWAP'" in str(caught.value)


def test_an_execution_algorithm_path_that_is_a_strategy_is_refused():
    source = StrategySource.model_validate(
        {**EMA_CROSS, "execAlgorithms": [{"algorithmPath": EMA_CROSS["strategyPath"], "configPath": "a.b:C"}]}
    )
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy(source)
    assert "spec.strategy.execAlgorithms[0].algorithmPath" in str(caught.value) and "ExecAlgorithm" in str(caught.value)
