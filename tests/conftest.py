"""Fixtures for the real parts the tests use: a PostgreSQL server, the Kubernetes API emulator, the operator."""

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.kube",
    "tests.support.operator",
    "tests.support.api_calls",
    "tests.support.tiers",
]
