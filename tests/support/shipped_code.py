"""A strategy shipped as source text, as a desk ships one in a ConfigMap (spec.strategy.code): a module that exists
nowhere in the image, so a strategy that runs it can only have imported it from where it was shipped."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.desk import example

MODULE = "shipped_ema"
SOURCE = '''"""NautilusTrader's EMACross, shipped beside the image rather than in it."""

from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig


class ShippedEMACrossConfig(EMACrossConfig, frozen=True):
    pass


class ShippedEMACross(EMACross):
    def __init__(self, config: ShippedEMACrossConfig) -> None:
        super().__init__(config)
'''
HELPER = '"""A second file of the same ConfigMap."""\n'


def configmap(name: str = "ema-code", module: str = MODULE) -> dict[str, Any]:
    """The ConfigMap ``kubectl create configmap NAME --from-file=MODULE.py --from-file=helpers.py`` makes."""
    return {"metadata": {"name": name}, "data": {f"{module}.py": SOURCE, "helpers.py": HELPER}}


def shipped_manifest(name: str = "ema-code", module: str = MODULE) -> dict[str, Any]:
    """The paper example running the shipped strategy, its code from ConfigMap ``name``."""
    doc = copy.deepcopy(example("paper-ema-cross"))
    strategy = doc["spec"]["strategy"]
    strategy["strategyPath"] = f"{module}:ShippedEMACross"
    strategy["configPath"] = f"{module}:ShippedEMACrossConfig"
    strategy["code"] = {"configMap": {"name": name}}
    return doc
