"""Fixtures for the real parts the tests use: a PostgreSQL server and the Kubernetes API emulator."""

pytest_plugins = ["tests.support.postgres", "tests.support.kube"]
