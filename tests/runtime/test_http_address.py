"""Where a strategy pod's endpoints listen: ``httpHost`` in its runtime.json (which the operator
renders from LIVESTRAT_RUNTIME_HTTP_HOST), every IPv4 address (0.0.0.0) when it says nothing.

An address is an IP address (IPv4 or IPv6, ``::`` for every IPv6 address); anything else is
refused at start as a configuration the runtime cannot run (exit 2), naming the field.
"""

from __future__ import annotations

import argparse
import json

import aiohttp
import pytest
from pydantic import ValidationError

from livestrat.api.runtime_config import RuntimeConfig
from strategy_runtime.entrypoint import run_pod
from strategy_runtime.runtime import EXIT_INVALID
from tests.support.runtime_process import RuntimeProcess, example_spec, strategy_config


def test_a_runtime_configuration_listens_on_every_ipv4_address_unless_it_names_an_ip_address(tmp_path):
    config, _ = strategy_config(tmp_path, example_spec())
    assert config.http_host is None and config.http_bind_host == "0.0.0.0"
    document = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    for address in ("::", "::1", "127.0.0.1", "10.1.2.3", "fe80::1%eth0"):
        assert RuntimeConfig.model_validate({**document, "httpHost": address}).http_bind_host == address
    for address in ("localhost", "[::1]", "::1:8080x", "0.0.0.0:8080", ""):
        with pytest.raises(ValidationError, match="is not an IP address"):
            RuntimeConfig.model_validate({**document, "httpHost": address})


def test_a_runtime_json_whose_http_host_is_not_an_ip_address_is_refused_naming_the_field(tmp_path, capsys):
    _, path = strategy_config(tmp_path, example_spec())
    path.write_text(json.dumps({**json.loads(path.read_text()), "httpHost": "localhost"}))
    assert run_pod(argparse.Namespace(config=str(path))) == EXIT_INVALID
    refused = capsys.readouterr().err
    assert "httpHost" in refused and "'localhost' is not an IP address" in refused, refused


@pytest.mark.slow  # runs a runtime process
async def test_a_runtime_told_to_listen_on_the_ipv6_loopback_serves_there_and_only_there(tmp_path):
    config, path = strategy_config(tmp_path, example_spec(), http_host="::1")
    runtime = RuntimeProcess.start(config, path)
    try:
        await runtime.wait_ready()  # on http://[::1]:PORT
        assert runtime.url == f"http://[::1]:{config.http_port}"
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"http://127.0.0.1:{config.http_port}/healthz")
        runtime.signal()
        code, _ = await runtime.wait_exit(config.halt_budget_seconds + 10)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()
    assert f"/healthz /readyz /metrics /state on [::1]:{config.http_port}" in runtime.output()
