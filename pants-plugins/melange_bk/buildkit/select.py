"""Several BuildKit daemons: one stable choice per package, with fallback when the chosen one does not answer.

`--buildkit-addr` / `BUILDKIT_HOST` may list several daemons, comma-separated. Each package goes to the daemon
that rendezvous hashing (highest random weight) ranks first for its name: the same package always lands on the
same daemon, so that daemon's cache stays warm for it, and adding or removing a daemon only moves the packages
whose first choice it was. If the chosen daemon does not answer a short probe, the next one in the package's
order is tried, with one warning line on stderr; when none answers, the error names every address tried.

With a single address nothing changes: no probe, no warning, errors come from the solve as before.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Callable, List, Optional, Sequence, Tuple

from melange_bk.buildkit.address import Address, TLSConfig, addresses_from_env
from melange_bk.buildkit.client import Client
from melange_bk.errors import BuildKitError

PROBE_TIMEOUT = 5.0  # seconds for the chosen daemon to answer ListWorkers before the next one is tried


def _score(key: str, address: Address) -> bytes:
    return hashlib.sha256(f"{key}\0{address.raw}".encode("utf-8", "surrogateescape")).digest()


def rendezvous_order(key: str, addresses: Sequence[Address]) -> Tuple[Address, ...]:
    """`addresses` ranked for `key` (a package name), best first; independent of the order they were given in
    and of PYTHONHASHSEED."""
    return tuple(sorted(addresses, key=lambda a: (_score(key, a), a.raw), reverse=True))


def _warn(message: str) -> None:
    print(f"melange-bk: warning: {message}", file=sys.stderr, flush=True)


def connect_for(
    key: str,
    addresses: Optional[str] = None,
    tls: Optional[TLSConfig] = None,
    *,
    probe_timeout: float = PROBE_TIMEOUT,
    warn: Callable[[str], None] = _warn,
) -> Client:
    """A Client for the daemon that `key` maps to among `addresses` (comma-separated; default BUILDKIT_HOST),
    falling back along the rendezvous order when it does not answer. The same TLS settings apply to all."""
    addrs = addresses_from_env(addresses)
    tls = tls if tls is not None else TLSConfig.from_env()
    if len(addrs) == 1:
        return Client(addrs[0], tls)
    order = rendezvous_order(key, addrs)
    failures: List[str] = []
    for i, addr in enumerate(order):
        client: Optional[Client] = None
        try:
            client = Client(addr, tls)
            client.workers(timeout=probe_timeout)
            return client
        except BuildKitError as e:
            if client is not None:
                client.close()
            failures.append(e.message)
            if i + 1 < len(order):
                warn(f"{e.message}; using {order[i + 1]} for {key}")
    raise BuildKitError(
        f"no BuildKit daemon answers for {key} (tried {', '.join(str(a) for a in order)}): {failures[-1]}"
    )
