"""The user's strategy, loaded from ``spec.strategy``: import paths plus config, checked one step at a time.

``load_strategy(source)`` imports the strategy class and its config class, builds the config
from ``spec.strategy.config`` and instantiates the strategy, so that every way this can go
wrong ends in one ``StrategyLoadError`` that names the import path (or the config) and
what to fix. The runtime reports it as the ``InvalidSpec`` condition.

Before msgspec builds the config (it names only the first problem it meets), the keys are checked
all at once: each unknown key with the field it was probably meant to be, every missing required
field. A config class the strategy does not take (its ``__init__`` names another) is refused too:
the strategy would be created with it and fail, if at all, on the first event that reads a field
only its own class has.

A live node's strategy claims the spec's instruments (NautilusTrader's ``StrategyConfig.external_order_claims``,
set by ``load_strategy(..., claims=...)`` when the user's config leaves it unset): the venue's orders and positions
that reconciliation brings back after a restart are then the strategy's own, not strategy ``EXTERNAL``'s
(docs/runtime.md, "A restarted strategy takes back its orders and its position").

With ``spec.strategy.code`` the modules may come from a directory the pod mounts (a ConfigMap, a directory of
the catalog's volume; ``runtime.json``'s ``codePath``): :class:`CodeDirectory` appends it to the import path
before anything is imported, and a module that is not there is reported with the source and the files it holds.
"""

from __future__ import annotations

import difflib
import importlib
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.common.config import msgspec_encoding_hook
from nautilus_trader.execution.algorithm import ExecAlgorithm
from nautilus_trader.execution.config import ExecAlgorithmConfig, ImportableExecAlgorithmConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.config import ImportableStrategyConfig, StrategyConfig
from nautilus_trader.trading.strategy import Strategy

from livestrat.api.spec import ExecAlgorithmSource, StrategyCode, StrategySource


class StrategyLoadError(Exception):
    """The strategy named in the spec cannot be imported, configured or created."""


@dataclass(frozen=True)
class LoadedStrategy:
    strategy: Strategy
    importable: ImportableStrategyConfig  # the same strategy, as a BacktestNode takes it
    # spec.strategy.execAlgorithms, in order: a fresh instance each, and each as a BacktestNode takes it.
    exec_algorithms: tuple[ExecAlgorithm, ...] = ()
    importable_exec_algorithms: tuple[ImportableExecAlgorithmConfig, ...] = ()


MAX_LISTED_FILES = 20  # files named when a module is not in the code's directory


@dataclass(frozen=True)
class CodeDirectory:
    """``spec.strategy.code`` as the pod has it: the directory its files are mounted at, and where they come from."""

    path: Path
    code: StrategyCode

    def files(self) -> list[str]:
        """The directory's entries, as the user named them: a ConfigMap volume's own bookkeeping (``..data`` and
        the timestamped directory it points at) and Python's bytecode cache left out."""
        try:
            return sorted(
                p.name for p in self.path.iterdir() if not p.name.startswith("..") and p.name != "__pycache__"
            )
        except OSError:
            return []

    def listed(self) -> str:
        names = self.files()
        if not names:
            return "no files"
        more = f" and {len(names) - MAX_LISTED_FILES} more" if len(names) > MAX_LISTED_FILES else ""
        return "the files " + ", ".join(names[:MAX_LISTED_FILES]) + more

    def use(self) -> None:
        """Put the directory on the import path. Appended, never prepended: a file shipped this way cannot replace a
        module of the image (NautilusTrader, livestrat, the standard library); one that has the same name as an
        installed module is refused by :meth:`check_found_here`."""
        if not self.path.is_dir():
            raise StrategyLoadError(
                f"{self.code.field}: the strategy's code ({self.code.describe()}) should be mounted at {self.path}, "
                "and nothing is there: the pod's volume does not hold it"
            )
        if str(self.path) not in sys.path:
            sys.path.append(str(self.path))
            importlib.invalidate_caches()

    def ships(self, module_name: str) -> bool:
        top = module_name.split(".", 1)[0]
        return (self.path / f"{top}.py").is_file() or (self.path / top).is_dir()

    def missing(self, field: str, path: str, module_name: str) -> StrategyLoadError:
        top = module_name.split(".", 1)[0]
        hint = (
            f" A ConfigMap's key {top}.py is the module {top}: kubectl create configmap "
            f"{self.code.config_map.name} --from-file={top}.py (a package: one key per file is flat; ship packages "
            "in the image or on the catalog's volume)."
            if self.code.config_map is not None
            else f" Copy {top}.py (or the package directory {top}/) into that directory."
        )
        return StrategyLoadError(
            f"spec.strategy.{field} {path!r}: module {module_name!r} is neither in the runtime image nor in "
            f"{self.code.describe()} ({self.code.field}, mounted at {self.path}), which has {self.listed()}.{hint}"
        )

    def check_found_here(self, field: str, path: str, module: object) -> None:
        """A module the directory ships that the image has too would silently run the image's: refuse it."""
        top = getattr(module, "__name__", "").split(".", 1)[0]
        location = getattr(module, "__file__", None) or ""
        if self.ships(top) and not Path(location).resolve().is_relative_to(self.path.resolve()):
            raise StrategyLoadError(
                f"spec.strategy.{field} {path!r}: {self.code.describe()} ships module {top!r}, but the runtime image "
                f"has a module of that name ({location}), which comes first on the import path: rename yours"
            )


def code_directory(source: StrategySource, code_path: str | None) -> CodeDirectory | None:
    """Where ``spec.strategy.code`` is mounted (``runtime.json``'s ``codePath``), on the import path; None for
    code in the image, or outside a pod (a local run names no code path: its modules must be importable)."""
    if source.code is None or code_path is None:
        return None
    directory = CodeDirectory(Path(code_path), source.code)
    directory.use()
    return directory


def _import(path: str, field: str, base: type, code: CodeDirectory | None = None) -> type:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise StrategyLoadError(
            f"spec.strategy.{field} {path!r} is not an import path of the form package.module:Class"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if code is not None and missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            raise code.missing(field, path, module_name) from exc  # the module itself, not one it imports
        raise StrategyLoadError(
            f"spec.strategy.{field} {path!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {exc}. Is the package installed in the runtime image?"
        ) from exc
    if code is not None:
        code.check_found_here(field, path, module)
    found = getattr(module, attribute, None)
    if found is None:
        raise StrategyLoadError(f"spec.strategy.{field} {path!r}: module {module_name!r} has no {attribute!r}")
    if not (isinstance(found, type) and issubclass(found, base)):
        raise StrategyLoadError(
            f"spec.strategy.{field} {path!r} is not a NautilusTrader {base.__name__} subclass (got {found!r})"
        )
    return found


MAX_LISTED_FIELDS = 12  # fields named as "allowed" when nothing is close to an unknown key


def key_problems(config: Mapping[str, Any], config_cls: type, where: str = "spec.strategy.config") -> list[str]:
    """Every key of ``config`` the class does not have (with what it was probably meant to be), and every
    required field it lacks, as ``spec.strategy.config.KEY: problem`` (``where``: the config's field)."""
    fields = msgspec.structs.fields(config_cls)
    names = [f.encode_name for f in fields]
    problems = []
    for key in config:
        if key in names:
            continue
        close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.75)
        if close:
            hint = f"did you mean {close[0]!r}?"
        else:
            listed = ", ".join(names[:MAX_LISTED_FIELDS]) + (", ..." if len(names) > MAX_LISTED_FIELDS else "")
            hint = f"its fields are {listed}"
        problems.append(f"{where}.{key}: {config_cls.__name__} has no such field; {hint}")
    problems += [
        f"{where}.{f.encode_name}: required by {config_cls.__name__}, missing"
        for f in fields
        if f.required and f.encode_name not in config
    ]
    return problems


def taken_config(strategy_cls: type) -> type | None:
    """The config class the strategy's ``__init__`` declares, when it declares one (Cython classes do not)."""
    try:
        hints = typing.get_type_hints(strategy_cls.__init__)
    except Exception:  # an annotation that does not resolve: nothing to check against
        return None
    declared = hints.get("config")
    return declared if isinstance(declared, type) and issubclass(declared, StrategyConfig) else None


def _build_config(config_cls: type, values: Mapping[str, Any], where: str, config_path: str) -> Any:
    problems = key_problems(values, config_cls, where)
    if problems:
        raise StrategyLoadError(f"{where} does not fit {config_path}: " + "; ".join(problems))
    try:
        return config_cls.parse(msgspec.json.encode(values, enc_hook=msgspec_encoding_hook))
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError) as exc:
        raise StrategyLoadError(f"{where} does not fit {config_path} ({config_cls.__name__}): {exc}") from exc


def load_exec_algorithms(
    sources: list[ExecAlgorithmSource], code: CodeDirectory | None = None
) -> tuple[tuple[ExecAlgorithm, ...], tuple[ImportableExecAlgorithmConfig, ...]]:
    """The execution algorithms of ``spec.strategy.execAlgorithms``: instances, and the same as importable configs."""
    algorithms: list[ExecAlgorithm] = []
    importables: list[ImportableExecAlgorithmConfig] = []
    ids: dict[str, int] = {}
    for i, source in enumerate(sources):
        field = f"execAlgorithms[{i}]"
        algorithm_cls = _import(source.algorithm_path, f"{field}.algorithmPath", ExecAlgorithm, code)
        config_cls = _import(source.config_path, f"{field}.configPath", ExecAlgorithmConfig, code)
        config = _build_config(config_cls, source.config, f"spec.strategy.{field}.config", source.config_path)
        try:
            algorithm = algorithm_cls(config=config)
        except Exception as exc:
            raise StrategyLoadError(
                f"spec.strategy.{field}.algorithmPath {source.algorithm_path!r} could not be created with its "
                f"config: {type(exc).__name__}: {exc}"
            ) from exc
        earlier = ids.setdefault(algorithm.id.value, i)
        if earlier != i:
            raise StrategyLoadError(
                f"spec.strategy.{field}: execution algorithm id {algorithm.id.value!r} is execAlgorithms[{earlier}]'s "
                "too; give one of them another exec_algorithm_id in its config"
            )
        algorithms.append(algorithm)
        importables.append(
            ImportableExecAlgorithmConfig(
                exec_algorithm_path=source.algorithm_path, config_path=source.config_path, config=dict(source.config)
            )
        )
    return tuple(algorithms), tuple(importables)


def load_strategy(source: StrategySource, code_path: str | None = None, claims: Sequence[str] = ()) -> LoadedStrategy:
    """The strategy instance the spec describes (and its execution algorithms), or StrategyLoadError saying
    what is wrong. ``code_path``: where ``spec.strategy.code`` is mounted (``RuntimeConfig.code_path``).

    ``claims``: the instruments whose orders and positions the node's reconciliation gives to this strategy
    (a live node passes the spec's instruments); the strategy's ``external_order_claims`` when
    its config leaves that field unset. The importable config (the backtest's) stays as the user wrote it."""
    code = code_directory(source, code_path)
    try:
        strategy_cls = _import(source.strategy_path, "strategyPath", Strategy, code)
        config_cls = _import(source.config_path, "configPath", StrategyConfig, code)
    except StrategyLoadError as exc:
        if source.code is None or code is not None:
            raise
        # outside a pod (livestrat run, backtest, validate --strict) nothing is mounted
        raise StrategyLoadError(
            f"{exc} The spec ships its code in {source.code.describe()} ({source.code.field}), which only a pod "
            "mounts: here the module must be importable (installed, or its directory on PYTHONPATH)."
        ) from exc
    declared = taken_config(strategy_cls)
    if declared is not None and not issubclass(config_cls, declared):
        raise StrategyLoadError(
            f"spec.strategy.configPath {source.config_path!r}: {strategy_cls.__name__} takes a "
            f"{declared.__module__}:{declared.__name__} (or a subclass of it), not a {config_cls.__name__}"
        )
    config = _build_config(config_cls, source.config, "spec.strategy.config", source.config_path)
    if claims and config.external_order_claims is None:
        # The field itself, on the config already checked and parsed (StrategyConfig's own, whatever names the
        # user's class encodes its fields under).
        config = msgspec.structs.replace(config, external_order_claims=[InstrumentId.from_str(i) for i in claims])
    try:
        strategy = strategy_cls(config=config)
    except Exception as exc:
        raise StrategyLoadError(
            f"{source.strategy_path} could not be created with its config: {type(exc).__name__}: {exc}"
        ) from exc
    importable = ImportableStrategyConfig(
        strategy_path=source.strategy_path, config_path=source.config_path, config=dict(source.config)
    )
    algorithms, importable_algorithms = load_exec_algorithms(source.exec_algorithms, code)
    return LoadedStrategy(
        strategy=strategy,
        importable=importable,
        exec_algorithms=algorithms,
        importable_exec_algorithms=importable_algorithms,
    )
