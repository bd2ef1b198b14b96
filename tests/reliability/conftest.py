"""The reliability suite uses the integration suite's daemon fixtures (BUILDKIT_HOST; fail, never skip)."""

from tests.integration.conftest import (  # noqa: F401 (fixtures, found by pytest in this module)
    bk,
    buildctl,
    buildkit_addr,
    buildkitd_tls,
    busybox_root,
    standalone_buildkitd,
)
