"""Every local run has a ledger key of its own, even two started within the same second."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

from strategy_runtime.local import run
from strategy_runtime.local.run import own_key
from tests.support.runtime import paper_manifest, runtime_config


def test_two_runs_started_in_the_same_second_get_keys_of_their_own(tmp_path):
    config = runtime_config(paper_manifest(bars=100), tmp_path / "catalog")
    same_second = datetime(2026, 12, 6, 16, 50, 7, tzinfo=UTC)
    with mock.patch.object(run, "datetime", wraps=datetime) as clock:
        clock.now.return_value = same_second
        keys = {own_key(config, "run").key for _ in range(50)}
    assert len(keys) == 50
    namespace = config.strategy.namespace
    assert all(
        k.startswith(f"{namespace}-run-20261206-165007-") and k.endswith(f"/{config.strategy.name}") for k in keys
    )
