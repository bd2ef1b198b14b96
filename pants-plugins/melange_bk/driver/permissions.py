"""What a build may do beyond the defaults, as the user allows it: network in a step, insecure steps.

Every step runs with the network off and BuildKit's default capabilities. Two things in a YAML need more:
git-checkout `cherry-picks` (the step fetches the picked commits: `plan.Step.network`) and top-level
`capabilities.add` beyond BuildKit's defaults (insecure steps: `llb.security_for`). Neither is granted because a
YAML asks: the user allows each (`--allow-network`, `--allow-insecure`; Pants: `[melange].allow_network`,
`[melange].allow_insecure`), and the daemon must allow the matching entitlement (network.host,
security.insecure). Without the user's permission the build stops before anything is solved, with one line
naming the YAML and the line that asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

from melange_bk import llb
from melange_bk.config.model import Capabilities
from melange_bk.errors import ConfigError
from melange_bk.llb.exec import DEFAULT_CAPABILITIES
from melange_bk.plan.model import BuildPlan, Step


@dataclass(frozen=True)
class Permissions:
    network: bool = False  # steps that ask for it reach the network (the daemon's host network)
    insecure: bool = False  # capabilities beyond BuildKit's defaults (insecure steps)


def _steps(plan: BuildPlan) -> Iterable[Tuple[str, Step]]:
    for step in plan.steps:
        yield "pipeline", step
    for sub in plan.subpackages:
        for step in sub.steps:
            yield f'subpackage "{sub.name}" pipeline', step
    if plan.test is not None:
        for step in plan.test.steps:
            yield "test pipeline", step
    for sub in plan.subpackages:
        if sub.test is not None:
            for step in sub.test.steps:
                yield f'subpackage "{sub.name}" test pipeline', step


def check(plan: BuildPlan, path: str, allowed: Optional[Permissions] = None) -> None:
    """Raise `ConfigError` (`path:line: …`) if `plan` needs what `allowed` does not grant."""
    allowed = allowed or Permissions()
    if not allowed.network:
        for where, step in _steps(plan):
            if step.network:
                raise ConfigError(
                    f"{where} step {step.id.split('.')[0]} ({step.uses}): git-checkout cherry-picks fetch commits "
                    "in the build step, which needs the network: allow it with --allow-network (Pants: "
                    "[melange].allow_network = true); the daemon must allow the network.host entitlement",
                    path=path,
                    line=step.line,
                )
    caps = plan.capabilities or Capabilities()
    if not allowed.insecure and llb.security_for(caps.add, caps.drop) is llb.SecurityMode.INSECURE:
        beyond = sorted(set(caps.add) - DEFAULT_CAPABILITIES)
        raise ConfigError(
            f"capabilities.add {', '.join(beyond)}: beyond BuildKit's default capabilities, which only insecure "
            "steps (all capabilities, no seccomp) grant: allow them with --allow-insecure (Pants: "
            "[melange].allow_insecure = true); the daemon must allow the security.insecure entitlement",
            path=path,
        )
