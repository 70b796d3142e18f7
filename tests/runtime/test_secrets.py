"""No secret value ever appears in the runtime's logs, /state, /metrics or the status it pushes.

A real ``livestrat runtime`` gets recognisable secrets the way a pod gets them: venue
credentials and the ledger DSN (with a password) in its environment, a bearer token in its
kubeconfig. It trades, reports, loses its database half-way (a proxy cuts the connection,
so the ledger's and the fence's error paths run too) and halts; every byte it wrote or
served is searched. PostgreSQL here trusts local connections, so the password is accepted
whatever it is: it is a marker, sent on every connection.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import pytest

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.kube_emulator import kubeconfig
from tests.support.runtime_process import RuntimeProcess, example_spec, strategy_config
from tests.support.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow

SECRETS = {
    ENV_API_KEY: "API-KEY-7f3a9c-do-not-leak",
    ENV_API_SECRET: "API-SECRET-b81e44-do-not-leak",
    ENV_API_PASSPHRASE: "PASSPHRASE-0d2c19-do-not-leak",
}
DB_PASSWORD = "DB-PASSWORD-5e6f70-do-not-leak"
TOKEN = "SERVICE-ACCOUNT-TOKEN-91ab2c-do-not-leak"


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
    assert "ledger: writing" in output or "fence" in output  # the error paths did run
    pushed = [r.body.decode(errors="replace") for r in emulator.writes()]
    stored = json.dumps(emulator.read_object(LIVESTRATEGIES, "s", namespace="desk"))
    everything = {"logs": output, "served": "\n".join(served), "pushed": "\n".join(pushed), "status": stored}
    for secret in [*SECRETS.values(), DB_PASSWORD, TOKEN]:
        for where, text in everything.items():
            assert secret not in text, f"{secret} leaked into {where}"
    assert served[0] and "livestrat_fills" in served[1]
