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


def test_the_operators_http_servers_listen_on_every_ipv4_address_unless_told_another_address():
    assert OperatorSettings.from_env({}).http_host == "0.0.0.0"  # as before the setting existed
    assert operator_kwargs(OperatorSettings.from_env({}))["liveness_endpoint"] == "http://0.0.0.0:8081/healthz"
    ipv6 = OperatorSettings.from_env({"LIVESTRAT_HTTP_HOST": "::", "LIVESTRAT_HEALTH_PORT": "9000"})
    assert operator_kwargs(ipv6)["liveness_endpoint"] == "http://[::]:9000/healthz"
    assert OperatorSettings.from_env({"LIVESTRAT_HTTP_HOST": "10.0.0.7"}).http_host == "10.0.0.7"


@pytest.mark.parametrize("variable", ["LIVESTRAT_HTTP_HOST", "LIVESTRAT_RUNTIME_HTTP_HOST"])
@pytest.mark.parametrize("value", ["localhost", "[::]", "0.0.0.0:8080", "300.1.2.3", "::1/128"])
def test_a_listen_address_that_is_not_an_ip_address_stops_the_operator_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=f"{variable}: .*is not an IP address") as refused:
        OperatorSettings.from_env({variable: value})
    assert "0.0.0.0" in str(refused.value) and "::" in str(refused.value)  # what is allowed
