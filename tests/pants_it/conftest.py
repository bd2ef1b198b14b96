"""Pants integration tests use the integration suite's daemon fixture (BUILDKIT_HOST; fail, never skip) and a tiny
clone of this checkout per test module."""

from typing import Iterator

import pytest

from tests.integration.conftest import buildkit_addr  # noqa: F401 (a fixture, found by pytest in this module)
from tests.pants_it.clone import PantsRunner, checkout, clone, tiny


@pytest.fixture(scope="module")
def pants(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PantsRunner]:
    """A clone reduced to hello, libgreet and greet (`tiny`), with its own Pants home; one per test module."""
    base = tmp_path_factory.mktemp("pants-it-" + request.module.__name__.rsplit(".", 1)[-1])
    repo = clone(checkout(), str(base / "repo"))
    tiny(repo)
    runner = PantsRunner(repo, str(base / "home"))
    yield runner
    runner.cleanup()
