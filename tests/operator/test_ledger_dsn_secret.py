"""A ledger DSN Secret the runtime cannot use: the desk reads why, and never the password.

The pod's runtime is the real one (started by the stand-in kubelet with the Secret's DSN in its
environment); its last log lines become the container's termination message, which the operator
quotes in the LiveStrategy's conditions and Events. A password with a ``/`` left unencoded breaks
the URI (any parser takes the part before it for a port, the rest for a database): the runtime
refuses the DSN as a spec it cannot run, saying what to encode. A wrong password is refused by
the server: the runtime fails, naming the ledger. Neither story leaves a piece of the password
in an Event, a status, or anything else the operator wrote.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator
from tests.support.postgres import PasswordRole
from tests.support.secrets import assert_no_trace, password_with

pytestmark = pytest.mark.slow


def ledger_secret(desk: Desk, name: str, dsn: str) -> None:
    secret = {"metadata": {"name": name}, "data": {"dsn": base64.b64encode(dsn.encode()).decode()}}
    desk.emulator.create_object("v1/secrets", secret, namespace=desk.namespace)


def reported(desk: Desk, name: str) -> str:
    """Everything the desk can read about a LiveStrategy: its status and every Event's message."""
    events = [e for e in desk.emulator.list_objects("v1/events", desk.namespace)]
    return json.dumps(desk.get(name)) + "\n" + "\n".join(json.dumps(e) for e in events)


async def test_a_ledger_secret_with_a_broken_or_wrong_password_is_reported_without_a_trace_of_it(
    emulator, desk: Desk, kube_env, tmp_path, pg_password_role: PasswordRole
):
    role = pg_password_role
    unencoded = password_with("/")
    wrong = password_with("/", "?", "@")
    ledger_secret(desk, "ledger-unencoded", f"postgresql://{role.name}:{unencoded}@{role.host}:{role.port}/postgres")
    ledger_secret(desk, "ledger-wrong", role.dsn("postgres", quote(wrong, safe="")))
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True),
        running_operator(emulator, fast_settings()),
    ):
        await desk.apply(paper("unencoded", ledger={"dsnSecret": {"name": "ledger-unencoded"}}))
        await desk.apply(paper("wrong", ledger={"dsnSecret": {"name": "ledger-wrong"}}))

        # the unencoded '/': a spec the runtime cannot run, with what to write instead
        await wait_for(lambda: "StrategyRejected" in desk.events("unencoded"), timeout=90)
        assert desk.phase("unencoded") == "Invalid"
        rejected = desk.condition("unencoded", "InvalidSpec")["message"]
        assert "the ledger DSN in LIVESTRAT_LEDGER_DSN" in rejected and "%2F" in rejected, rejected

        # the wrong password: the runtime failed, naming the ledger and what to check
        await wait_for(lambda: "RuntimeFailed" in desk.events("wrong"), timeout=90)
        failed = desk.event_messages("wrong", "RuntimeFailed")[0]
        assert f"cannot connect to the ledger database {role.host}:{role.port}/postgres" in failed, failed

        written = "\n".join(r.body.decode(errors="replace") for r in emulator.writes())
        assert_no_trace(
            [unencoded, wrong],
            unencoded=reported(desk, "unencoded"),
            wrong=reported(desk, "wrong"),
            written=written,
        )
