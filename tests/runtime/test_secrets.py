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

Then passwords with every character that means something in a URI (``/ ? # @ : % [ ]`` and a
space), which the server checks: each one opens the ledger percent-encoded, and as it is where
that is unambiguous (``: [ ]``, the space), and is refused, saying what to encode, where it is
not; a pod with all of them in its password trades, and one with a wrong such password, or with
a malformed DSN, is refused. No piece of four characters of any of them appears anywhere: logs,
``/state``, ``/metrics``, the status pushed, the errors raised, the process's command line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from livestrat.api.contract import ExitCode
from livestrat.api.runtime_config import (
    ENV_API_KEY,
    ENV_API_PASSPHRASE,
    ENV_API_SECRET,
    ENV_LEDGER_DSN,
    RuntimeConfig,
)
from livestrat.kube_emulator.emulator import kubeconfig
from strategy_runtime.ledger import LedgerError, LedgerUnavailable, PostgresLedger
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
from strategy_runtime.runtime import EXIT_FAILED, EXIT_INVALID
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.ledger import KEY
from tests.support.live_nodes import live_manifest
from tests.support.operator import runtime_token
from tests.support.postgres import PasswordRole, fresh_database, password_role
from tests.support.runtime_process import RuntimeProcess, example_spec, free_port, strategy_config
from tests.support.secrets import SPECIAL_CHARACTERS, assert_no_trace, password_with
from tests.support.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow

SECRETS = {
    ENV_API_KEY: "API-KEY-7f3a9c-do-not-leak",
    ENV_API_SECRET: "API-SECRET-b81e44-do-not-leak",
    ENV_API_PASSPHRASE: "PASSPHRASE-0d2c19-do-not-leak",
}
DB_PASSWORD = "DB-PASSWORD-5e6f70-do-not-leak"


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
    token = runtime_token(emulator, "desk", manifest["metadata"]["name"])  # the pod's own: recognisable, must not leak
    kube.write_text(json.dumps(kubeconfig(str(emulator.url), token=token)))
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
        await proxy.cut()  # the database goes away: the fence unconfirmed (reconnecting fails), orders held, a halt
        await runtime.wait_until(
            lambda s: s["ledger"]["fenceUnconfirmed"] and "reconnecting failed" in runtime.output(),
            what="the fence unconfirmed, the database unreachable",
        )
        for endpoint in ("/state", "/metrics", "/readyz"):
            served.append((await runtime.get(endpoint))[1])
        # the operator's halt record (kubectl scale --replicas=0): this SIGTERM is a halt, haltPolicy applies
        halt = {"reason": "ScaledToZero", "message": "spec.replicas is 0", "since": "2026-12-06T07:00:00Z"}
        emulator.patch_object(LIVESTRATEGIES, "s", {"status": {"halt": halt}}, namespace="desk", subresource="status")
        runtime.signal()
        code, _ = await runtime.wait_exit(60)
    finally:
        runtime.kill()
        await proxy.stop()
    # halted as asked, but not flat (the example's haltPolicy is flatten): without a confirmed fence no
    # order leaves, not even a close, and the halt says it is incomplete
    assert code == ExitCode.HALT_INCOMPLETE, runtime.output()

    output = runtime.output()
    # the error paths ran, and their texts (which carry the database errors) are among those searched
    unconfirmed = re.search(r"ledger: cannot confirm the fence for desk/s \((.+?)\): new orders wait", output)
    assert unconfirmed, "the unconfirmed fence was not logged"
    assert unconfirmed.group(1).startswith("the fencing connection to 127.0.0.1:"), unconfirmed.group(0)
    assert "not ready: new orders are held" in served[-1]
    pushed = [r.body.decode(errors="replace") for r in emulator.writes()]
    stored = json.dumps(emulator.read_object(LIVESTRATEGIES, "s", namespace="desk"))
    assert_nowhere(
        [*SECRETS.values(), DB_PASSWORD, token],
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
    manifest = live_manifest("binance", "spot", "BTCUSDT.BINANCE")
    manifest["metadata"]["name"] = name = "live-secrets"
    emulator.add_namespace("desk")
    emulator.create_object(LIVESTRATEGIES, manifest, namespace="desk")
    kube = tmp_path / "kubeconfig.json"
    token = runtime_token(emulator, "desk", manifest["metadata"]["name"])  # the pod's own: recognisable, must not leak
    kube.write_text(json.dumps(kubeconfig(str(emulator.url), token=token)))
    # the venue's endpoints, for this test only (spec.venue.options may not name base_url_ws for Binance)
    nowhere = {
        "http": f"http://127.0.0.1:{closed}",
        "ws_stream": f"ws://127.0.0.1:{closed}",
        "ws_api": f"ws://127.0.0.1:{closed}",
    }
    env = {**LIVE_KEYS, "KUBECONFIG": str(kube), ENV_VENUE_ENDPOINTS: json.dumps(nowhere)}
    secrets = [*LIVE_KEYS.values(), role.password, WRONG_PASSWORD, token]

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
    # NautilusTrader's Binance HTTP client logs each request's query at DEBUG, a signed one's signature with it:
    # a request valid for the venue's recvWindow, and what an attacker with the logs would replay
    assert "signature=***" in right_output  # a signed request was made (and its failure reported, masked)
    assert not re.search(r"signature=(?!\*\*\*)", right_output), "a request's signature is in the log"
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


# --------------------------------------------------------------------------- passwords a URI must encode

EVERY_SPECIAL = password_with(*SPECIAL_CHARACTERS)  # Tq5/Zw8?Hx3#Lv6@Mn2:Rp9%Ys4[Kd7]Gb1 Fc0
WRONG_SPECIAL = password_with(*reversed(SPECIAL_CHARACTERS))
# What ends the user information or starts an escape when left as it is; ':', '[', ']' and a space do not.
ENCODE_THESE = "/?#@%"


def as_a_user_writes_it(password: str) -> str:
    """``password`` in a URI: what must be percent-encoded is, the rest (':', '[', ']', ' ') as it is."""
    return "".join(quote(c, safe="") if c in ENCODE_THESE else c for c in password)


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def raised_texts(error: BaseException) -> str:
    """An exception as it can be shown: its message, its repr and its traceback with the chain."""
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))])


@pytest.mark.parametrize("character", SPECIAL_CHARACTERS)
async def test_a_ledger_password_with_a_special_character_opens_the_ledger_and_never_leaks(
    caplog, pg_dsn, pg_password_role: PasswordRole, character
):
    caplog.set_level(logging.DEBUG)
    password, wrong = password_with(character), "Wr0" + password_with(character)
    name = f"ledger_pw_{SPECIAL_CHARACTERS.index(character)}"
    texts: dict[str, str] = {}
    async with (
        password_role(pg_password_role, name, password) as role,
        fresh_database(pg_dsn, owner=role.name) as owned,
    ):
        database = database_of(owned)
        where = f"{role.host}:{role.port}/{database}"

        # percent-encoded: the ledger opens and takes its fence
        ledger = PostgresLedger(role.dsn(database, quote(password, safe="")), KEY)
        await ledger.open()
        try:
            assert ledger.fence_held
            texts["open ledger"] = f"{ledger!r} {ledger.describe()}"
        finally:
            await ledger.close(timeout=10)
        assert ledger.describe() == f"PostgreSQL {where}"

        # as it is: read whole (':', '[', ']', ' ') or refused, saying what to encode
        if character in ENCODE_THESE:
            with pytest.raises(LedgerError) as refused:
                PostgresLedger(role.dsn(database), KEY)
            assert "percent-encode" in str(refused.value)
            texts["refused"] = raised_texts(refused.value)
        else:
            async with PostgresLedger(role.dsn(database), KEY) as ledger:
                assert ledger.fence_held

        # a wrong one, percent-encoded: refused by the server, naming the ledger, not the password
        ledger = PostgresLedger(role.dsn(database, quote(wrong, safe="")), KEY, connect_timeout=10)
        with pytest.raises(LedgerUnavailable) as unavailable:
            await ledger.open()
        assert f"cannot connect to the ledger database {where}: InvalidPasswordError" in str(unavailable.value)
        texts["wrong password"] = raised_texts(unavailable.value) + repr(ledger)
    texts["logs"] = "\n".join(r.getMessage() for r in caplog.records)
    assert_no_trace([password, wrong], **texts)


async def test_a_pod_whose_ledger_password_has_every_special_character_connects_and_never_leaks_it(
    tmp_path, emulator, pg_dsn, pg_password_role: PasswordRole
):
    emulator.add_namespace("desk")
    spec = example_spec()
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "s"}, "spec": spec}
    emulator.create_object(LIVESTRATEGIES, manifest, namespace="desk")
    kube = tmp_path / "kubeconfig.json"
    token = runtime_token(emulator, "desk", manifest["metadata"]["name"])  # the pod's own: recognisable, must not leak
    kube.write_text(json.dumps(kubeconfig(str(emulator.url), token=token)))
    malformed = {c: password_with(c) for c in ENCODE_THESE}  # each left as it is in its DSN
    places: dict[str, str] = {}

    def configured(tag: str) -> tuple[RuntimeConfig, Path]:
        return strategy_config(
            tmp_path / tag, spec, name="s", ledger_kind="postgresql", report_status=True, log_level="DEBUG"
        )

    async with (
        password_role(pg_password_role, "ledger_every_special", EVERY_SPECIAL) as role,
        fresh_database(pg_dsn, owner=role.name) as owned,
    ):
        database = database_of(owned)
        where = f"{role.host}:{role.port}/{database}"

        # the right password: the runtime connects, trades, serves and pushes its status, and halts
        config, path = configured("right")
        dsn = role.dsn(database, as_a_user_writes_it(EVERY_SPECIAL))
        runtime = RuntimeProcess.start(config, path, ledger_dsn=dsn, env={"KUBECONFIG": str(kube)}, tag="right")
        try:
            await runtime.wait_ready()
            state = await runtime.wait_until(lambda s: s["trading"]["fills"] > 0, what="some fills")
            await wait_for(lambda: emulator.read_object(LIVESTRATEGIES, "s", namespace="desk").get("status"))
            for endpoint in ("/state", "/metrics", "/healthz", "/readyz"):
                places[f"served {endpoint}"] = (await runtime.get(endpoint))[1]
            places["cmdline"] = Path(f"/proc/{runtime.process.pid}/cmdline").read_bytes().decode(errors="replace")
            runtime.signal()
            code, _ = await runtime.wait_exit(config.halt_budget_seconds + 10)
        finally:
            runtime.kill()
        places["right run's output"] = runtime.output()
        assert code == 0, runtime.output()
        assert state["ledger"]["where"] == f"PostgreSQL {where}"

        # a wrong password: refused by the server at start (exit 1), naming the ledger
        config, path = configured("wrong")
        dsn = role.dsn(database, as_a_user_writes_it(WRONG_SPECIAL))
        wrong = RuntimeProcess.start(config, path, ledger_dsn=dsn, env={"KUBECONFIG": str(kube)}, tag="wrong")
        try:
            code, _ = await wrong.wait_exit(60)
        finally:
            wrong.kill()
        places["wrong run's output"] = wrong.output()
        assert code == EXIT_FAILED, wrong.output()
        assert f"cannot connect to the ledger database {where}: InvalidPasswordError" in wrong.output()

        # malformed: each character a URI must encode, left as it is; and a host that crashed the parser
        cases = {c: role.dsn(database, password) for c, password in malformed.items()}
        cases["an IPv6 host without its bracket"] = f"postgresql://{role.name}:{EVERY_SPECIAL}@[::1:5432/{database}"
        for case, dsn in cases.items():
            config, path = configured(f"malformed-{len(places)}")
            refused = RuntimeProcess.start(config, path, ledger_dsn=dsn, env={"KUBECONFIG": str(kube)}, tag="bad")
            try:
                code, _ = await refused.wait_exit(60)
            finally:
                refused.kill()
            output = places[f"output for {case!r}"] = refused.output()
            assert code == EXIT_INVALID, output
            assert f"the ledger DSN in {ENV_LEDGER_DSN}" in output, output
            assert "Traceback" not in output, output
    places["pushed"] = "\n".join(r.body.decode(errors="replace") for r in emulator.writes())
    places["status"] = json.dumps(emulator.read_object(LIVESTRATEGIES, "s", namespace="desk"))
    assert_no_trace([EVERY_SPECIAL, WRONG_SPECIAL, *malformed.values()], **places)
