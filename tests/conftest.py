"""Fixtures for the real parts the tests use: a PostgreSQL server, the Kubernetes API emulator, the operator."""

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.kube",
    "tests.support.operator",
    "tests.support.api_calls",
    "tests.support.tiers",
]


def pytest_configure(config) -> None:
    """A pytest-xdist worker (``make test`` runs two) starts with COLUMNS=80 and LINES=24 in its environment, which a
    run in one process does not have: the programs the tests start (the desk's tables, the dashboard) would then be
    80 columns wide. Keep the worker's environment the one a developer's run has."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)
