"""Fixtures for the real parts the tests use: a PostgreSQL server, catalogs, the API emulator."""

pytest_plugins = ["tests.support.postgres"]
