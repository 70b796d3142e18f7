"""The example the runtime benchmarks run: ``examples/paper-ema-cross.yaml`` over a catalog they wrote."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livestrat.api.runtime_config import RuntimeConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "paper-ema-cross.yaml"


def example_over(catalog: str | Path, workdir: str | Path) -> RuntimeConfig:
    """The example's runtime configuration reading ``catalog`` as it is.

    The benchmark writes a larger sample than the example's ``data.sample`` asks for; with the
    example's own ``data.sample`` the runtime would find that sample stale and write the
    example's 3,000 bars over it, so the spec here names no sample: the catalog is the data.
    """
    from strategy_runtime.local.config import local_runtime_config

    config = local_runtime_config(EXAMPLE, workdir=Path(workdir), catalog=Path(catalog))
    spec = config.spec
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"sample": None})})
    return config.model_copy(update={"spec": spec})
