"""No secret value ever appears in the runtime's logs, /state, /metrics, the status it pushes or its errors.

A real ``livestrat runtime`` gets recognisable secrets the way a pod gets them: venue
credentials and the ledger DSN (with a password) in its environment, a bearer token in its
kubeconfig. Two stories:

- a paper strategy trades, reports, loses its database half-way (a proxy cuts the connection,
  so the ledger's and the fence's error paths run too) and halts; its ledger role is trusted
  by the server, so the DSN's password is only a marker, sent on every connection;
- a live Binance testnet strategy (its client pointed at a closed local port: nothing leaves
  the machine) whose ledger role the server authenticates by SCRAM password: once with the
  right password (the node is built and connecting when it is stopped), once with a wrong one
  (the runtime refuses to start, naming the ledger, not the password).

Every byte they wrote, served and pushed is searched, and so are the errors themselves.
"""

from __future__ import annotations

import asyncio
import json
import re
import traceback
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from strategy_runtime.ledger import LedgerUnavailable, PostgresLedger
from strategy_runtime.ledger.postgres import DsnParts
from strategy_runtime.runtime import EXIT_FAILED
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.kube_emulator import kubeconfig
from tests.support.live_nodes import live_manifest
from tests.support.postgres import PasswordRole
from tests.support.runtime_process import RuntimeProcess, example_spec, free_port, strategy_config
from tests.support.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow

SECRETS = {
    ENV_API_KEY: "API-KEY-7f3a9c-do-not-leak",
    ENV_API_SECRET: "API-SECRET-b81e44-do-not-leak",
    ENV_API_PASSPHRASE: "PASSPHRASE-0d2c19-do-not-leak",
}
DB_PASSWORD = "DB-PASSWORD-5e6f70-do-not-leak"
TOKEN = "SERVICE-ACCOUNT-TOKEN-91ab2c-do-not-leak"


def assert_nowhere(secrets: list[str], **places: str) -> None:
    for secret in secrets:
        for where, text in places.items():
            assert secret not in text, f"{secret} leaked into {where}"


def with_password(dsn: str, host: str, port: int) -> str:
    url = urlsplit(dsn)
    return urlunsplit(url._replace(netloc=f"postgres:{DB_PASSWORD}@{host}:{port}"))


async def test_no_secret_reaches_logs_state_metrics_or_status(tmp_path, emulator, pg_database):
    emulator.add_namespace("desk")
    spec = example_spec()
    spec["data"]["replay"]["speed"] = 20000  # long enough to lose the database half-way
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "s"}, "spec": spec}
    emulator.create_object(LIVESTRATEGIES, manifest, namespace="desk")
    kube = tmp_path / "kubeconfig.json"
    kube.write_text(json.dumps(kubeconfig(str(emulator.url), token=TOKEN)))
    database = urlsplit(pg_database)
    proxy = CuttableProxy(database.hostname, database.port)
    await proxy.start()
    config, path = strategy_config(
        tmp_path, spec, name="s", ledger_kind="postgresql", report_status=True, log_level="DEBUG"
    )
    runtime = RuntimeProcess.start(
        config,
        path,
        ledger_dsn=with_password(pg_database, "127.0.0.1", proxy.port),
        env={**SECRETS, "KUBECONFIG": str(kube)},
    )
    served = []
    try:
        await runtime.wait_ready()
        await runtime.wait_until(lambda s: s["trading"]["fills"] > 5, what="some fills")
        await wait_for(lambda: emulator.read_object(LIVESTRATEGIES, "s", namespace="desk").get("status"), timeout=10)
        for endpoint in ("/state", "/metrics", "/healthz", "/readyz"):
            served.append((await runtime.get(endpoint))[1])
        await proxy.cut()  # the database goes away: write retries, a lost fence, a halt
        code, _ = await runtime.wait_exit(60)
    finally:
        runtime.kill()
        await proxy.stop()
    assert code == 4, runtime.output()  # the fence went with the connection: trading stopped

    output = runtime.output()
    # the error paths ran, and their texts (which carry the database errors) are among those searched
    lost = re.search(
        r"ledger: fence for desk/s at PostgreSQL 127\.0\.0\.1:\d+/\S+ LOST \((.+?)\): another runtime", output
    )
    assert lost, "the lost fence was not logged"
    assert lost.group(1).startswith("the fencing connection to 127.0.0.1:"), lost.group(0)
    pushed = [r.body.decode(errors="replace") for r in emulator.writes()]
    stored = json.dumps(emulator.read_object(LIVESTRATEGIES, "s", namespace="desk"))
    assert_nowhere(
        [*SECRETS.values(), DB_PASSWORD, TOKEN],
        logs=output,
        served="\n".join(served),
        pushed="\n".join(pushed),
        status=stored,
    )
    assert served[0] and "livestrat_fills" in served[1]


WRONG_PASSWORD = "WRONG-PASSWORD-a7b3c1-do-not-leak"
LIVE_KEYS = {ENV_API_KEY: "LIVE-KEY-2b9e7d-do-not-leak", ENV_API_SECRET: "LIVE-SECRET-6c0f3a-do-not-leak"}


async def test_a_scram_ledger_password_and_live_keys_never_leak_with_the_right_password_or_a_wrong_one(
    tmp_path, emulator, pg_dsn, pg_database, pg_password_role: PasswordRole
):
    role = pg_password_role
    database = DsnParts.parse(pg_database).database
    admin = await asyncpg.connect(pg_dsn)
    try:  # the runtime's role owns its ledger database (it creates the schema)
        await admin.execute(f'ALTER DATABASE "{database}" OWNER TO {role.name}')
    finally:
        await admin.close()
    closed = free_port()  # the venue: nothing listens, so the live clients fail to connect, locally
    manifest = live_manifest(
        "binance",
        "spot",
        "BTCUSDT.BINANCE",
        options={"base_url_http": f"http://127.0.0.1:{closed}", "base_url_ws": f"ws://127.0.0.1:{closed}"},
    )
    manifest["metadata"]["name"] = name = "live-secrets"
    emulator.add_namespace("desk")
    emulator.create_object(LIVESTRATEGIES, manifest, namespace="desk")
    kube = tmp_path / "kubeconfig.json"
    kube.write_text(json.dumps(kubeconfig(str(emulator.url), token=TOKEN)))
    env = {**LIVE_KEYS, "KUBECONFIG": str(kube)}
    secrets = [*LIVE_KEYS.values(), role.password, WRONG_PASSWORD, TOKEN]

    # the right password: the ledger opens (fence taken), the live node is built and connecting
    config, path = strategy_config(
        tmp_path / "right",
        manifest["spec"],
        name=name,
        ledger_kind="postgresql",
        report_status=True,
        log_level="DEBUG",
    )
    runtime = RuntimeProcess.start(config, path, ledger_dsn=role.dsn(database), env=env, tag="right")
    served = []
    try:
        await runtime.wait_until(lambda s: s.get("ledger", {}).get("fenceHeld"), what="the ledger open")

        async def node_built() -> bool:
            return "livestrat_risk_state{" in (await runtime.get("/metrics"))[1]

        for _ in range(600):
            if await node_built():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the live node was never built:\n{runtime.output()}")
        await wait_for(lambda: emulator.read_object(LIVESTRATEGIES, name, namespace="desk").get("status"), timeout=10)
        for endpoint in ("/state", "/metrics", "/healthz", "/readyz"):
            served.append((await runtime.get(endpoint))[1])
        runtime.signal()
        await runtime.wait_exit(config.halt_budget_seconds + 10)
    finally:
        runtime.kill()
    right_output = runtime.output()
    assert "BINANCE" in served[0] or "binance" in right_output.lower()  # the venue's clients were there
    assert json.loads(served[0])["ledger"]["where"] == f"PostgreSQL {DsnParts.parse(role.dsn(database))}"

    # a wrong password: refused at start, with a message that names the ledger and not the password
    config, path = strategy_config(
        tmp_path / "wrong",
        manifest["spec"],
        name=name,
        ledger_kind="postgresql",
        report_status=True,
        log_level="DEBUG",
    )
    wrong = RuntimeProcess.start(config, path, ledger_dsn=role.dsn(database, WRONG_PASSWORD), env=env, tag="wrong")
    try:
        code, _ = await wrong.wait_exit(60)
    finally:
        wrong.kill()
    wrong_output = wrong.output()
    assert code == EXIT_FAILED, wrong_output
    where = f"{role.host}:{role.port}/{database}"
    assert (
        f"cannot open the ledger, so this runtime will not trade: cannot connect to the ledger database {where}: "
        in (wrong_output)
    )
    assert f'password authentication failed for user "{role.name}"' in wrong_output
    assert "check the user and password of the ledger DSN (LIVESTRAT_LEDGER_DSN" in wrong_output

    # the errors themselves, as the ledger raises them (message, repr, traceback with its chain)
    ledger = PostgresLedger(role.dsn(database, WRONG_PASSWORD), config.strategy.key)
    with pytest.raises(LedgerUnavailable) as refused:
        await ledger.open()
    error = refused.value
    assert f"{role.host}:{role.port}/{database}" in str(error)
    raised = "\n".join([str(error), repr(error), "".join(traceback.format_exception(error)), repr(ledger)])

    pushed = "\n".join(r.body.decode(errors="replace") for r in emulator.writes())
    stored = json.dumps(emulator.read_object(LIVESTRATEGIES, name, namespace="desk"))
    assert_nowhere(
        secrets,
        right_run_logs=right_output,
        wrong_run_logs=wrong_output,
        served="\n".join(served),
        pushed=pushed,
        status=stored,
        raised=raised,
    )
