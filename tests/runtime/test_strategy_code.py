"""The runtime imports a strategy from where spec.strategy.code ships it (a ConfigMap's volume, laid out as the kubelet
lays it out; a directory of the catalog's volume), and says which source and which files when the module is not
there."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import yaml

from livestrat.api.spec import StrategySource
from livestrat.api.validation import parse
from livestrat.kube_emulator import configmap_volume
from strategy_runtime.strategy_source import StrategyLoadError, load_strategy
from tests.support.shipped_code import SOURCE, configmap, shipped_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def module():
    """A module name no other test has imported (sys.modules keeps what was imported), forgotten afterwards."""
    name = f"shipped_{uuid.uuid4().hex[:8]}"
    saved = list(sys.path)
    yield name
    sys.path[:] = saved
    for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[loaded]


def source(module: str, code: dict | None = None) -> StrategySource:
    doc = shipped_manifest(module=module)["spec"]["strategy"]
    if code is not None:
        doc["code"] = code
    return StrategySource.model_validate(doc)


def mounted_configmap(directory, module: str):
    files = configmap_volume.payload({"name": "ema-code", "defaultMode": 0o444}, configmap(module=module))
    configmap_volume.write(directory, files)
    return directory


def test_a_strategy_shipped_in_a_configmap_is_imported_from_its_volume(tmp_path, module):
    code = mounted_configmap(tmp_path / "code", module)
    loaded = load_strategy(source(module), code_path=str(code))
    assert type(loaded.strategy).__name__ == "ShippedEMACross"
    assert sys.modules[module].__file__ == str(code / f"{module}.py")
    # appended, never first: what the image has keeps its place on the import path
    assert sys.path[-1] == str(code)


def test_a_module_the_configmap_lacks_is_reported_with_its_name_and_files(tmp_path, module):
    code = mounted_configmap(tmp_path / "code", module)
    wrong = source(module).model_copy(update={"strategy_path": "ema_crosss:ShippedEMACross"})
    with pytest.raises(StrategyLoadError) as failed:
        load_strategy(wrong, code_path=str(code))
    message = str(failed.value)
    assert "spec.strategy.strategyPath 'ema_crosss:ShippedEMACross'" in message
    assert f"ConfigMap ema-code (spec.strategy.code.configMap, mounted at {code})" in message
    assert f"which has the files helpers.py, {module}.py." in message  # the volume's ..data bookkeeping left out
    assert "kubectl create configmap ema-code --from-file=ema_crosss.py" in message


def test_code_that_is_not_mounted_where_runtime_json_says_is_reported(tmp_path, module):
    with pytest.raises(
        StrategyLoadError, match=r"spec\.strategy\.code\.configMap: .*ConfigMap ema-code.* nothing is there"
    ):
        load_strategy(source(module), code_path=str(tmp_path / "absent"))


def test_a_shipped_module_named_like_one_of_the_image_is_refused_rather_than_silently_replaced(tmp_path, module):
    code = tmp_path / "code"
    configmap_volume.write(code, {"yaml.py": (SOURCE.encode(), 0o444)})
    shadowed = source(module).model_copy(update={"strategy_path": "yaml:ShippedEMACross"})
    with pytest.raises(StrategyLoadError, match="ConfigMap ema-code ships module 'yaml', but the runtime image has"):
        load_strategy(shadowed, code_path=str(code))


def test_a_package_from_a_directory_of_the_catalogs_volume_is_imported(tmp_path, module):
    code = tmp_path / "bucket" / "strategies" / "v3"
    (code / module).mkdir(parents=True)
    (code / module / "__init__.py").write_text("")
    (code / module / "ema.py").write_text(SOURCE)
    spec = source(module, {"catalogVolume": {"path": "strategies/v3"}}).model_copy(
        update={"strategy_path": f"{module}.ema:ShippedEMACross", "config_path": f"{module}.ema:ShippedEMACrossConfig"}
    )
    assert type(load_strategy(spec, code_path=str(code)).strategy).__name__ == "ShippedEMACross"
    missing = spec.model_copy(update={"strategy_path": "elsewhere:ShippedEMACross"})
    with pytest.raises(
        StrategyLoadError,
        match=r"directory strategies/v3 of the catalog's volume \(spec\.strategy\.code\.catalogVolume",
    ):
        load_strategy(missing, code_path=str(code))


def test_a_local_run_names_no_code_path_and_imports_as_usual(module):
    # outside a pod nothing is mounted: the shipped module must be importable, and is reported as any other
    with pytest.raises(StrategyLoadError) as failed:
        load_strategy(source(module))
    assert "ConfigMap ema-code (spec.strategy.code.configMap), which only a pod mounts" in str(failed.value)
    assert "its directory on PYTHONPATH" in str(failed.value)


def test_the_shipped_code_example_runs_its_strategy_from_its_own_configmap(tmp_path):
    # examples/paper-shipped-code.yaml: the ConfigMap and the LiveStrategy naming it, as `kubectl apply -f` stores them
    docs = list(yaml.safe_load_all((ROOT / "examples" / "paper-shipped-code.yaml").read_text()))
    [configmap_doc] = [d for d in docs if d["kind"] == "ConfigMap"]
    [strategy_doc] = [d for d in docs if d["kind"] == "LiveStrategy"]
    strategy = parse(strategy_doc)
    source = strategy.spec.strategy
    assert source.code is not None and source.code.config_map.name == configmap_doc["metadata"]["name"]
    code = tmp_path / "code"
    configmap_volume.write(code, configmap_volume.payload({"name": configmap_doc["metadata"]["name"]}, configmap_doc))
    module = source.strategy_path.split(":")[0]
    try:
        loaded = load_strategy(source, code_path=str(code))
        assert sys.modules[module].__file__ == str(code / f"{module}.py")
        assert type(loaded.strategy).__name__ == "DeskEMA"
    finally:
        sys.modules.pop(module, None)
        if str(code) in sys.path:
            sys.path.remove(str(code))
