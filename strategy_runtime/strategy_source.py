"""The user's strategy, loaded from ``spec.strategy``: import paths plus config, checked one step at a time.

``load_strategy(source)`` imports the strategy class and its config class, builds the config
from ``spec.strategy.config`` and instantiates the strategy, so that every way this can go
wrong ends in one ``StrategyLoadError`` that names the import path (or the config) and
what to fix. The runtime reports it as the ``InvalidSpec`` condition.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import msgspec
from nautilus_trader.common.config import msgspec_encoding_hook
from nautilus_trader.trading.config import ImportableStrategyConfig, StrategyConfig
from nautilus_trader.trading.strategy import Strategy

from livestrat.api.spec import StrategySource


class StrategyLoadError(Exception):
    """The strategy named in the spec cannot be imported, configured or created."""


@dataclass(frozen=True)
class LoadedStrategy:
    strategy: Strategy
    importable: ImportableStrategyConfig  # the same strategy, as a BacktestNode takes it


def _import(path: str, field: str, base: type) -> type:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise StrategyLoadError(
            f"spec.strategy.{field} {path!r} is not an import path of the form package.module:Class"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise StrategyLoadError(
            f"spec.strategy.{field} {path!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {exc}. Is the package installed in the runtime image?"
        ) from exc
    found = getattr(module, attribute, None)
    if found is None:
        raise StrategyLoadError(f"spec.strategy.{field} {path!r}: module {module_name!r} has no {attribute!r}")
    if not (isinstance(found, type) and issubclass(found, base)):
        raise StrategyLoadError(
            f"spec.strategy.{field} {path!r} is not a NautilusTrader {base.__name__} subclass (got {found!r})"
        )
    return found


def load_strategy(source: StrategySource) -> LoadedStrategy:
    """The strategy instance the spec describes, or StrategyLoadError saying what is wrong."""
    strategy_cls = _import(source.strategy_path, "strategyPath", Strategy)
    config_cls = _import(source.config_path, "configPath", StrategyConfig)
    try:
        raw = msgspec.json.encode(source.config, enc_hook=msgspec_encoding_hook)
        config = config_cls.parse(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError) as exc:
        raise StrategyLoadError(
            f"spec.strategy.config does not fit {source.config_path} ({config_cls.__name__}): {exc}"
        ) from exc
    try:
        strategy = strategy_cls(config=config)
    except Exception as exc:
        raise StrategyLoadError(
            f"{source.strategy_path} could not be created with its config: {type(exc).__name__}: {exc}"
        ) from exc
    importable = ImportableStrategyConfig(
        strategy_path=source.strategy_path, config_path=source.config_path, config=dict(source.config)
    )
    return LoadedStrategy(strategy=strategy, importable=importable)
