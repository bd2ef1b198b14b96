"""`pants melange-graph`: the build graph of the selected packages as build waves, JSON or Graphviz dot."""

from __future__ import annotations

import json
from enum import Enum

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import collect_rules, goal_rule
from pants.engine.target import Targets
from pants.option.option_types import EnumOption

from melange_bk.pants.dependency_inference import MelangeGraph
from melange_bk.pants.target_types import MelangeSourceField


class GraphFormat(Enum):
    waves = "waves"
    json = "json"
    dot = "dot"


class MelangeGraphSubsystem(GoalSubsystem):
    name = "melange-graph"
    help = (
        "Show the build graph of the selected melange packages (and everything they need from this repository): "
        "build waves, one line per wave, or `--format=json|dot`. YAMLs that cannot be read (and packages whose "
        "needs cannot be settled) are listed on stderr, the graph of the rest is shown, and the exit code is 1. "
        "JSON shows per package which needs are in the tree (`in_tree`) and which come from the configured "
        "repositories (`from_repositories`)."
    )

    output_format = EnumOption(
        "--format",
        default=GraphFormat.waves,
        help="`waves` (one line per build wave), `json`, or `dot` (Graphviz).",
    )


class MelangeGraphGoal(Goal):
    subsystem_cls = MelangeGraphSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@goal_rule
async def melange_graph_goal(
    console: Console, targets: Targets, subsystem: MelangeGraphSubsystem, melange: MelangeGraph
) -> MelangeGraphGoal:
    selected = sorted(t[MelangeSourceField].file_path for t in targets if t.has_field(MelangeSourceField))
    graph = melange.graph
    fmt = subsystem.output_format
    if fmt == GraphFormat.json:
        console.print_stdout(json.dumps(graph.to_json(selected), indent=2, sort_keys=True))
    elif fmt == GraphFormat.dot:
        console.print_stdout(graph.to_dot(selected), end="")
    else:
        for i, wave in enumerate(graph.waves(selected), start=1):
            names = " ".join(f"{graph.nodes[p].name}({melange.address_of(p)})" for p in wave)
            console.print_stdout(f"wave {i}: {names}")
    problems = sorted({*graph.broken.values(), *graph.errors.values()})
    for problem in problems:
        console.print_stderr(problem)
    if problems:
        console.print_stderr(
            f"{len(graph.broken)} YAML(s) cannot be read, {len(graph.errors)} package(s) have needs that cannot "
            "be settled; the graph above is that of the rest"
        )
    return MelangeGraphGoal(exit_code=1 if problems else 0)


def rules():
    return collect_rules()
