"""`pants melange-graph`: the build graph of the selected packages as build waves, JSON or Graphviz dot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Tuple

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import Get, collect_rules, goal_rule, rule
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


@dataclass(frozen=True)
class RenderRequest:
    format: GraphFormat
    selected: Tuple[str, ...]  # YAML paths, sorted


@dataclass(frozen=True)
class RenderedGraph:
    stdout: str
    stderr: Tuple[str, ...]
    exit_code: int


@rule
async def render_graph(request: RenderRequest, melange: MelangeGraph) -> RenderedGraph:
    """The goal's output, memoised by the engine (under pantsd a repeated `melange-graph` only prints it)."""
    graph = melange.graph
    selected = request.selected
    if request.format == GraphFormat.json:
        stdout = json.dumps(graph.to_json(selected), indent=2, sort_keys=True) + "\n"
    elif request.format == GraphFormat.dot:
        stdout = graph.to_dot(selected)
    else:
        stdout = "".join(
            f"wave {i}: " + " ".join(f"{graph.nodes[p].name}({melange.address_of(p)})" for p in wave) + "\n"
            for i, wave in enumerate(graph.waves(selected), start=1)
        )
    problems = sorted({*graph.broken.values(), *graph.errors.values()})
    if problems:
        problems.append(
            f"{len(graph.broken)} YAML(s) cannot be read, {len(graph.errors)} package(s) have needs that cannot "
            "be settled; the graph above is that of the rest"
        )
    return RenderedGraph(stdout, tuple(problems), 1 if problems else 0)


@goal_rule
async def melange_graph_goal(
    console: Console, targets: Targets, subsystem: MelangeGraphSubsystem
) -> MelangeGraphGoal:
    selected = tuple(
        sorted(t[MelangeSourceField].file_path for t in targets if t.has_field(MelangeSourceField))
    )
    rendered = await Get(RenderedGraph, RenderRequest(subsystem.output_format, selected))
    console.print_stdout(rendered.stdout, end="")
    for line in rendered.stderr:
        console.print_stderr(line)
    return MelangeGraphGoal(exit_code=rendered.exit_code)


def rules():
    return collect_rules()
