"""A trader's afternoon with ``kubectl livestrat``, against strategies that really trade.

The operator is the real kopf operator, the pods' processes are real ``livestrat runtime`` processes (NautilusTrader
nodes replaying the example's sample data, started by the stand-in kubelet), one strategy records its fills in a real
PostgreSQL ledger whose DSN is in a Secret, and the trader types ``kubectl livestrat ...`` into the real kubectl with a
kubeconfig pointing at the emulator. A password planted where it should never be (an annotation, an Event) and the
ledger's own password must leave no trace in anything the desk prints or writes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import tarfile
import uuid
from decimal import Decimal
from urllib.parse import quote

import pytest

from livestrat.desk.fleet import parse_money
from livestrat.kube_emulator.kubelet import Kubelet
from livestrat.kube_emulator.pod_logs import plain_text
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.export import fills_csv, fills_json
from strategy_runtime.ledger.reader import LedgerSource
from tests.support.desk import Desk, paper
from tests.support.desk_plugin import kubectl_livestrat
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator
from tests.support.postgres import PasswordRole, connected, password_role
from tests.support.secrets import assert_no_trace, password_with

pytestmark = pytest.mark.slow

PG = "ema-pg"  # ledger in PostgreSQL, in namespace default
OTHER = "ema-b"  # the SQLite ledger on the pod's scratch volume, in namespace desk-b


def trading(desk: Desk, name: str) -> dict:
    return desk.status(name).get("trading") or {}


@pytest.fixture
def desk(emulator, kube_env) -> Desk:
    return Desk(emulator, kube_env)


async def test_a_trader_watches_reads_reports_halts_and_resumes_with_kubectl_livestrat(
    emulator, desk: Desk, kube_env, tmp_path, pg_dsn, pg_password_role: PasswordRole
):
    password = password_with("/", "?", "@", "#", ":")
    emulator.add_namespace("desk-b")
    other = desk.in_namespace("desk-b")
    async with password_role(pg_password_role, "desk_ledger", password) as role:
        database = f"desk_{uuid.uuid4().hex[:12]}"
        async with connected(pg_dsn) as admin:
            await admin.execute(f'CREATE DATABASE {database} OWNER "desk_ledger"')
        try:
            await _story(
                emulator, desk, other, kube_env, tmp_path, role.dsn(database, quote(password, safe="")), password
            )
        finally:
            async with connected(pg_dsn) as admin:
                await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def _story(emulator, desk: Desk, other: Desk, kube_env, tmp_path, dsn: str, password: str) -> None:
    secret = {"metadata": {"name": "ledger"}, "data": {"dsn": base64.b64encode(dsn.encode()).decode()}}
    emulator.create_object("v1/secrets", secret, namespace="default")
    ledger_file = tmp_path / "ledger-dsn"
    ledger_file.write_text(dsn)
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True) as kubelet,
        running_operator(emulator, fast_settings(stale_after_seconds=30)),
    ):
        await desk.apply(paper(PG, ledger={"dsnSecret": {"name": "ledger"}}))
        await other.apply(paper(OTHER))
        # planted: a DSN pasted into an annotation, a password quoted in an Event
        await desk.annotate(PG, "example.com/notes", f"old ledger: postgresql://desk_ledger:{password}@db:5432/x")
        emulator.create_object(
            "v1/events",
            {
                "metadata": {"name": f"{PG}.planted"},
                "involvedObject": {"kind": "LiveStrategy", "name": PG, "namespace": "default"},
                "reason": "Planted",
                "message": f"someone wrote password={password} here",
                "type": "Normal",
            },
            namespace="default",
        )
        for where, name in ((desk, PG), (other, OTHER)):
            await wait_for(lambda w=where, n=name: trading(w, n).get("fills", 0) > 0, timeout=120)

        # the fleet across namespaces
        listed = await kubectl_livestrat("list", "-A", kubeconfig=kube_env)
        assert listed.returncode == 0, listed.output
        print(f"\n$ kubectl livestrat list -A\n{listed.stdout}")
        for text in (PG, OTHER, "desk-b", "Running", "PnL by currency", "USDT", "LIMIT", "maxPosition"):
            assert text in listed.stdout, text

        # one strategy's story
        status = await kubectl_livestrat("status", PG, kubeconfig=kube_env)
        assert status.returncode == 0, status.output
        for text in ("Conditions", "Ready", "Trading", "maxDrawdown", "Events", "Planted", f"{PG}-0", "total PnL"):
            assert text in status.stdout, text
        assert "someone wrote password=REDACTED here" in status.stdout  # the planted Event, shown scrubbed

        # its log, as the pod wrote it
        logs = await kubectl_livestrat("logs", PG, "--tail", "3", kubeconfig=kube_env)
        assert logs.returncode == 0, logs.output
        lines = logs.stdout.splitlines()
        assert len(lines) == 3
        written = plain_text(kubelet.containers[("default", f"{PG}-0")].log)
        assert all(line in written for line in lines)

        # a halt not confirmed does nothing
        unconfirmed = await kubectl_livestrat("halt", PG, kubeconfig=kube_env)
        assert unconfirmed.returncode == 3 and "scale it to 0 replicas" in unconfirmed.stdout
        assert desk.get(PG)["spec"]["replicas"] == 1

        # follow the log while halting: it ends when the container does
        following = asyncio.create_task(kubectl_livestrat("logs", PG, "-f", kubeconfig=kube_env, timeout=180))
        halted = await kubectl_livestrat("halt", PG, "--yes", "--wait", "--timeout", "90", kubeconfig=kube_env)
        assert halted.returncode == 0, halted.output
        assert "done: scaled to 0 replicas" in halted.stdout and "now: phase Halted" in halted.stdout
        followed = await asyncio.wait_for(following, timeout=120)
        assert followed.returncode == 0, followed.output
        assert "SIGTERM" in followed.stdout or "halt" in followed.stdout.lower(), followed.stdout[-2000:]
        assert (
            await kubectl_livestrat("halt", OTHER, "-n", "desk-b", "--yes", "--wait", kubeconfig=kube_env)
        ).returncode == 0

        # with both halted, the numbers hold still: the fleet's totals are the statuses' sums, per currency
        document = json.loads((await kubectl_livestrat("list", "-A", "-o", "json", kubeconfig=kube_env)).stdout)
        expected: dict[str, Decimal] = {}
        for where, name in ((desk, PG), (other, OTHER)):
            for currency, amount in parse_money(trading(where, name).get("totalPnl")).items():
                expected[currency] = expected.get(currency, Decimal(0)) + amount
        assert {c: Decimal(a) for c, a in document["totalsByCurrency"].items()} == expected
        fills = {(s["namespace"], s["name"]): s["fills"] for s in document["strategies"]}
        assert fills == {
            ("default", PG): trading(desk, PG)["fills"],
            ("desk-b", OTHER): trading(other, OTHER)["fills"],
        }

        # the fills, from the ledger, as the ledger holds them
        printed = await kubectl_livestrat(
            "fills", PG, "--ledger-file", str(ledger_file), "-o", "json", kubeconfig=kube_env
        )
        assert printed.returncode == 0, printed.output
        key = trading(desk, PG)["ledgerKey"]
        in_ledger = await LedgerSource(postgres=DsnParts.parse(dsn)).fills(key)
        assert printed.stdout == fills_json(in_ledger)
        assert len(in_ledger) == trading(desk, PG)["fills"]
        table = await kubectl_livestrat("fills", PG, "--ledger-file", str(ledger_file), kubeconfig=kube_env)
        assert f"{len(in_ledger)} fill(s) of {key}" in table.stdout
        with_fills = await kubectl_livestrat("status", PG, "--ledger-file", str(ledger_file), kubeconfig=kube_env)
        assert f"last 5 of {len(in_ledger)} fill(s) of {key}" in with_fills.stdout, with_fills.output
        assert in_ledger[-1].trade_id in with_fills.stdout
        no_dsn = await kubectl_livestrat("fills", PG, kubeconfig=kube_env)
        assert no_dsn.returncode == 1 and "--ledger-file PATH" in no_dsn.stderr

        # the diagnostic bundle
        bundle = tmp_path / "bundle"
        report = await kubectl_livestrat(
            "report", PG, "--dir", str(bundle), "--tar", "--ledger-file", str(ledger_file), kubeconfig=kube_env
        )
        assert report.returncode == 0, report.output
        files = {str(p.relative_to(bundle)): p.read_text() for p in bundle.rglob("*") if p.is_file()}
        for expected_file in (
            "livestrategy.yaml",
            "children/configmap.yaml",
            "children/statefulset.yaml",
            "children/poddisruptionbudget.yaml",
            "events.yaml",
            "history.txt",
            "status.txt",
            "README.txt",
        ):
            assert expected_file in files, expected_file
        assert "Halted" in files["history.txt"] and "Planted" in files["events.yaml"]
        assert files["fills.csv"] == fills_csv(in_ledger)
        assert "REDACTED" in files["livestrategy.yaml"] and "REDACTED" in files["events.yaml"]
        with tarfile.open(bundle.with_name("bundle.tar.gz")) as tar:
            packed = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
        assert sorted(packed) == sorted(f"bundle/{name}" for name in files)

        # resume: trading again
        resumed = await kubectl_livestrat("resume", PG, "--yes", "--wait", "--timeout", "120", kubeconfig=kube_env)
        assert resumed.returncode == 0 and "now: phase Running" in resumed.stdout, resumed.output

        everything = {
            "list": listed.output,
            "status": status.output,
            "halt": halted.output,
            "fills": printed.output + table.output + no_dsn.output + with_fills.output,
            "report": report.output,
            **{f"bundle/{name}": text for name, text in files.items()},
            **packed,
        }
        assert_no_trace([password], **everything)
