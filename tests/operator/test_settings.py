"""The operator's settings, as the chart's environment variables become them."""

from __future__ import annotations

import pytest

from strategy_operator.main import operator_kwargs
from strategy_operator.settings import ENVIRONMENT, OperatorSettings, SettingsError


def test_operator_replicas_get_deterministic_distinct_priorities_replica_0_acting():
    peered = {"LIVESTRAT_PEERING": "livestrat"}
    priorities = [
        operator_kwargs(OperatorSettings.from_env({**peered, "LIVESTRAT_REPLICA_ORDINAL": str(i)}))["priority"]
        for i in range(3)
    ]
    assert priorities == [1000, 999, 998]  # the same on every start: no random tie-breaking
    explicit = OperatorSettings.from_env({**peered, "LIVESTRAT_PRIORITY": "7", "LIVESTRAT_REPLICA_ORDINAL": "0"})
    assert explicit.peering_priority() == 7


def test_peering_without_a_way_to_tell_replicas_apart_refuses_to_start():
    with pytest.raises(SettingsError, match="LIVESTRAT_REPLICA_ORDINAL"):
        OperatorSettings.from_env({"LIVESTRAT_PEERING": "livestrat"})
    assert OperatorSettings.from_env({}).peering_priority() == 0  # standalone: no peering, no priority


def test_the_security_settings_default_to_any_image_and_no_service_account_of_the_strategys_choosing():
    settings = OperatorSettings.from_env({})
    assert settings.allowed_image_prefixes == [] and settings.allow_service_account_name is False
    assert ENVIRONMENT["LIVESTRAT_ALLOWED_IMAGE_PREFIXES"] == "allowed_image_prefixes"
    assert ENVIRONMENT["LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME"] == "allow_service_account_name"
    with pytest.raises(SettingsError, match="LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME"):
        OperatorSettings.from_env({"LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME": "perhaps"})
