"""Pants integration tests use the integration suite's daemon fixture (BUILDKIT_HOST; fail, never skip)."""

from tests.integration.conftest import buildkit_addr  # noqa: F401 (a fixture, found by pytest in this module)
