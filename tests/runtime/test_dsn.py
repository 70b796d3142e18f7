"""The ledger's DSN is read once, by PostgreSQL's URI rules, and refused whole when it is malformed.

A password holding ``/ ? # @ : % [ ]`` or a space is read whole when it is percent-encoded
(and, for ``: [ ]`` and the space, which cannot end the part they are in, when it is not); a
``/ ? # @ %`` left as it is would make any URI parser cut the password short and take the rest
for a host, a database or parameters, so such a DSN is refused, with a message that says which
part is wrong and what to write instead, and holds no part of the password. These run the
parser alone (and, last, the driver with what it makes of every form of address);
tests/runtime/test_secrets.py runs the same passwords through a real runtime and server.
"""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
import pytest

from livestrat.api.runtime_config import ENV_LEDGER_DSN, LedgerKind, LedgerTarget, RuntimeConfig, StrategyIdentity
from livestrat.api.spec import LiveStrategySpec
from livestrat.manifests import load_one_strategy
from strategy_runtime.ledger import LedgerError, PostgresLedger, ledger_for
from strategy_runtime.ledger.dsn import DsnParts
from tests.support.ledger import KEY, ROOT
from tests.support.runtime_process import free_port
from tests.support.secrets import SPECIAL_CHARACTERS, leaks, password_with

# What each character must be written as in a URI's password, when it must be encoded.
MUST_ENCODE = {"/": "%2F", "?": "%3F", "#": "%23", "@": "%40", "%": "%25"}
# These cannot end the user information (only an '@' does), so libpq reads them as they are.
READ_AS_THEY_ARE = {":", "[", "]", " "}


def postgresql_config(tmp_path) -> RuntimeConfig:
    manifest = load_one_strategy(ROOT / "examples" / "paper-ema-cross.yaml")
    return RuntimeConfig(
        strategy=StrategyIdentity(namespace="desk", name="ema-cross-btc"),
        spec=LiveStrategySpec.model_validate(manifest["spec"]),
        ledger=LedgerTarget(kind=LedgerKind.POSTGRESQL),
        state_dir=str(tmp_path),
        halt_budget_seconds=20,
    )


def refusal(tmp_path, dsn: str) -> str:
    """The message the runtime's ledger gives for ``dsn`` in its environment (it must refuse it)."""
    with pytest.raises(LedgerError) as refused:
        ledger_for(postgresql_config(tmp_path), environ={ENV_LEDGER_DSN: dsn})
    return str(refused.value)


@pytest.mark.parametrize("character", SPECIAL_CHARACTERS)
def test_a_percent_encoded_password_with_a_special_character_is_read_whole(character):
    password = password_with(character)
    dsn = f"postgresql://trader:{quote(password, safe='')}@db.internal:5433/ledger"
    ledger = PostgresLedger(dsn, KEY)
    assert ledger.describe() == "PostgreSQL db.internal:5433/ledger"
    assert DsnParts.parse(dsn).connect_arguments()["password"] == password
    assert leaks(password, ledger.redact(f"failed for {password} ({quote(password, safe='')})")) == []
    assert leaks(password, repr(ledger)) == []


@pytest.mark.parametrize("character", sorted(READ_AS_THEY_ARE))
def test_a_password_with_a_colon_a_bracket_or_a_space_as_it_is_is_read_whole(tmp_path, character):
    password = password_with(character)
    dsn = f"postgresql://trader:{password}@db.internal:5433/ledger"
    ledger = ledger_for(postgresql_config(tmp_path), environ={ENV_LEDGER_DSN: dsn})
    assert ledger.describe() == "PostgreSQL db.internal:5433/ledger"
    assert DsnParts.parse(dsn).connect_arguments()["password"] == password
    assert leaks(password, ledger.redact(f"failed for {password}")) == []


@pytest.mark.parametrize("character", sorted(MUST_ENCODE))
def test_a_password_with_an_unencoded_slash_question_mark_hash_at_or_percent_is_refused_without_a_trace_of_it(
    tmp_path, character
):
    password = password_with(character)
    message = refusal(tmp_path, f"postgresql://trader:{password}@db.internal:5433/ledger")
    assert leaks(password, message) == [], message
    assert ENV_LEDGER_DSN in message  # where the DSN came from
    assert "percent-encode" in message and MUST_ENCODE[character] in message, message


MALFORMED = {
    "an IPv6 host without its closing bracket": ("postgresql://trader:Tq5Zw8Hx3Lv@[::1:5432/ledger", "[::1]:5432"),
    "an IPv6 host without brackets": ("postgresql://trader:Tq5Zw8Hx3Lv@::1:5432/ledger", "brackets"),
    "an IPv6 host that is not one": ("postgresql://trader:Tq5Zw8Hx3Lv@[db.internal]:5432/ledger", "IPv6"),
    "a port that is not a number": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal:54x2/ledger", "port"),
    "a port out of range": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal:99999/ledger", "65535"),
    "an empty host in a list": ("postgresql://trader:Tq5Zw8Hx3Lv@db-a,,db-b/ledger", "host 2"),
    "a parameter without a value": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal/ledger?sslmode", "'='"),
    "a parameter the ledger does not take": ("postgresql://trader@db.internal/ledger?Tq5Zw8Hx3Lv=1", "sslmode"),
    "an sslmode that is not one": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal/ledger?sslmode=maybe", "verify-full"),
    "a parameter given twice": ("postgresql://trader@db.internal/ledger?password=Tq5Zw8Hx3Lv&password=x", "twice"),
    "a password given twice": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal/ledger?password=Tq5Zw8Hx3Lv", "once"),
    "a bad percent-escape in the database": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal/led%zzger", "%25"),
    "a keyword/value connection string": ("host=db.internal password=Tq5Zw8Hx3Lv", "postgresql://"),
    "another scheme": ("mysql://trader:Tq5Zw8Hx3Lv@db.internal/ledger", "postgresql://"),
    "a line break inside": ("postgresql://trader:Tq5Zw8Hx3Lv@db.internal/led\nger", "control character"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_dsn_is_refused_saying_what_is_wrong_and_holding_no_part_of_the_password(tmp_path, case):
    dsn, says = MALFORMED[case]
    message = refusal(tmp_path, dsn)
    assert says in message, message
    assert leaks("Tq5Zw8Hx3Lv", message) == [], message
    assert "db.internal" not in message  # nothing of a DSN it cannot read is echoed, not even the host


WELL_FORMED = {
    "IPv6": ("postgresql://trader:pw@[::1]:5433/ledger", "[::1]:5433/ledger"),
    "IPv6 on the default port": ("postgresql://trader:pw@[fe80::1%25eth0]/ledger", "[fe80::1%eth0]:5432/ledger"),
    "two hosts": ("postgresql://trader:pw@db-a:5432,db-b:5433/ledger?target_session_attrs=read-write", None),
    "a socket directory": ("postgresql://trader@/ledger?host=/var/run/postgresql&port=5433", None),
    "an encoded socket directory": ("postgresql://trader@%2Fvar%2Frun%2Fpostgresql:5433/ledger", None),
    "TLS and a password file": ("postgres://trader@db.internal/ledger?sslmode=verify-full&passfile=/etc/pgpass", None),
    "the password as a parameter": ("postgresql://trader@db.internal:5432/ledger?password=Tq%265Zw8%3DHx3Lv", None),
    "a trailing line break": ("postgresql://trader:pw@db.internal:5432/ledger\n", None),
}
DESCRIBED = {
    "two hosts": "db-a:5432,db-b:5433/ledger",
    "a socket directory": "/var/run/postgresql:5433/ledger",
    "an encoded socket directory": "/var/run/postgresql:5433/ledger",
    "TLS and a password file": "db.internal:5432/ledger",
    "the password as a parameter": "db.internal:5432/ledger",
    "a trailing line break": "db.internal:5432/ledger",
}


@pytest.mark.parametrize("case", WELL_FORMED, ids=list(WELL_FORMED))
def test_a_well_formed_dsn_is_described_by_its_hosts_and_database(tmp_path, case):
    dsn, described = WELL_FORMED[case]
    ledger = ledger_for(postgresql_config(tmp_path), environ={ENV_LEDGER_DSN: dsn})
    assert ledger.describe() == f"PostgreSQL {described or DESCRIBED[case]}"


def test_the_driver_gets_every_part_apart_so_it_parses_nothing_again():
    dsn = (
        "postgresql://tr%40der:Tq%2FZw8%3FHx3%23Lv@[::1]:5433,db-b/led%2Fger"
        "?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslpassword=Kp%26Rs7&target_session_attrs=read-write"
    )
    arguments = DsnParts.parse(dsn).connect_arguments()
    assert arguments == {
        "host": ["::1", "db-b"],
        "port": [5433, 5432],
        "user": "tr@der",
        "password": "Tq/Zw8?Hx3#Lv",
        "database": "led/ger",
        "ssl": "verify-full",
        "target_session_attrs": "read-write",
        "dsn": "postgresql://?sslrootcert=%2Fetc%2Fca.pem&sslpassword=Kp%26Rs7",
    }
    assert DsnParts.parse(dsn).redact("key password Kp&Rs7 (Kp%26Rs7)") == "key password *** (***)"


async def test_the_driver_reaches_the_server_by_every_form_of_address_the_parser_reads(pg_server):
    closed = free_port()  # nothing listens there: a host list goes on to the next host
    socket_dir = quote(pg_server.socket_dir, safe="")
    forms = [
        pg_server.dsn,
        f"postgresql://postgres@127.0.0.1:{closed},127.0.0.1:{pg_server.port}/postgres?sslmode=disable",
        f"postgresql://postgres@/postgres?host={pg_server.socket_dir}&port={pg_server.port}",
        f"postgresql://postgres@{socket_dir}:{pg_server.port}/postgres",
        f"postgresql://127.0.0.1:{pg_server.port}/postgres?user=postgres&target_session_attrs=read-write",
    ]
    for dsn in forms:
        connection = await asyncpg.connect(**DsnParts.parse(dsn).connect_arguments())
        try:
            assert await connection.fetchval("SELECT current_user") == "postgres", dsn
        finally:
            await connection.close()
