"""A mistyped command line must not print the secret it carries: argparse echoes what it did not understand.

A DSN typed on the command line (``--ledger postgresql://user:PASSWORD@host/db`` to a command that takes
none, or misspelt) reached stderr, and from there a terminal's scrollback, a CI log or a bug report.
"""

from __future__ import annotations

import pytest

from livestrat.cli import main

PASSWORD = "s3cr3t-Pa55"
DSN = f"postgresql://trader:{PASSWORD}@db.internal:5432/ledger"


@pytest.mark.parametrize(
    "argv",
    [
        ["fills", "--ledger-dsn", DSN],  # an option no command has
        ["validate", "--strict", "examples/paper-ema-cross.yaml", DSN, "--nope"],  # a stray value
        ["crd", DSN],  # a command that takes no argument
        ["nosuchcommand", DSN],  # an unknown command: argparse names the value as an invalid choice
        ["run", "--speed", DSN, "examples/paper-ema-cross.yaml"],  # a value a known option refuses
    ],
)
def test_a_dsn_on_a_mistyped_command_line_is_not_printed(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert PASSWORD not in err, err
    assert "livestrat" in err  # still says which program and what was wrong
    assert "error:" in err


def test_the_unrecognised_options_are_still_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fills", "--ledger-dsn", DSN])
    err = capsys.readouterr().err
    assert "--ledger-dsn" in err, err


def test_nor_by_the_kubectl_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    from livestrat.desk.plugin import main as plugin

    with pytest.raises(SystemExit) as exit_:
        plugin(["fills", "ema", "--ledger-dsn", DSN])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert PASSWORD not in err, err
    assert "--ledger-dsn" in err, err
