"""Every secret the desk could come across is scrubbed, whatever characters it holds (tests/support/secrets.py)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import yaml

from livestrat.desk.redact import REDACTED, scrub, scrub_text
from tests.support.secrets import SPECIAL_CHARACTERS, assert_no_trace, password_with

PASSWORDS = [password_with(c) for c in SPECIAL_CHARACTERS] + [password_with(*SPECIAL_CHARACTERS)]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_dsn_password_leaves_no_piece_in_text(password):
    texts = [
        f"ledger at postgresql://trader:{password}@db.internal:5432/ledger failed",
        f"postgresql://trader:{quote(password, safe='')}@db.internal/ledger",
        f"host=db user=trader password='{password.replace(chr(39), '')}' dbname=ledger",
        f"Authorization: Bearer {quote(password, safe='')}",
    ]
    for text in texts:
        assert_no_trace([password], scrubbed=scrub_text(text))
    assert "db.internal" in scrub_text(texts[0])  # where it points stays: it is what a person needs to diagnose


def test_objects_lose_secret_values_but_keep_references():
    password = password_with("@", "/")
    pod = {
        "metadata": {"annotations": {"note": f"postgresql://u:{password}@h/db"}},
        "spec": {
            "containers": [
                {
                    "env": [
                        {
                            "name": "LIVESTRAT_LEDGER_DSN",
                            "valueFrom": {"secretKeyRef": {"name": "ledger", "key": "dsn"}},
                        },
                        {"name": "VENUE_API_TOKEN", "value": password},
                        {"name": "LOG_LEVEL", "value": "INFO"},
                    ]
                }
            ]
        },
    }
    config = {"data": {"runtime.json": json.dumps({"ledger": {"kind": "postgresql"}, "apiKey": password})}}
    scrubbed = yaml.safe_dump(scrub(pod)) + yaml.safe_dump(scrub(config))
    assert_no_trace([password], scrubbed=scrubbed)
    env = scrub(pod)["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "ledger", "key": "dsn"}
    assert env[1]["value"] == REDACTED and env[2]["value"] == "INFO"
    assert scrub({"dsnSecret": {"name": "ledger"}, "password": password}) == {
        "dsnSecret": {"name": "ledger"},
        "password": REDACTED,
    }
