"""What a YAML may ask beyond the defaults only with the user's permission (driver.permissions): git-checkout
cherry-picks (the step reaches the network: host network, entitlement network.host) and capabilities beyond
BuildKit's defaults (insecure steps). Without it: one located error, before any LLB is solved."""

from __future__ import annotations

import textwrap

import pytest

from melange_bk import llb
from melange_bk.driver.llbgen import build_graph
from melange_bk.driver.permissions import Permissions, check
from melange_bk.errors import ConfigError
from melange_bk.llb.digest import op_bytes
from melange_bk.plan.compile import compile_text
from melange_bk.protos import ops_pb2

PIN = "0123456789abcdef0123456789abcdef01234567"
PICK = "89abcdef0123456789abcdef0123456789abcdef"
HEAD = textwrap.dedent(
    """\
    package:
      name: demo
      version: 1.0.0
      epoch: 0
    """
)


def _plan(picks: str = "", extra: str = ""):  # type: ignore[no-untyped-def]
    pipeline = textwrap.dedent(
        f"""\
        pipeline:
          - uses: git-checkout
            with:
              repository: https://example.invalid/demo.git
              expected-commit: {PIN}
        """
    )
    if picks:
        pipeline += "      cherry-picks: |\n" + textwrap.indent(picks, " " * 8)
    return compile_text("demo.yaml", HEAD + extra + pipeline + "  - runs: echo built\n")


def _networks(plan) -> list:  # type: ignore[no-untyped-def]
    definition = llb.marshal(build_graph(plan, llb.scratch()).state)
    out = []
    for data in op_bytes(definition):
        op = ops_pb2.Op.FromString(data)
        if op.WhichOneof("op") == "exec":
            out.append(op.exec.network)
    return out


def test_cherry_picks_are_parsed_in_order_with_their_branches() -> None:
    plan = _plan(f"# a comment line\n3.10/{PICK}: fix a CVE # trailing comment\n\n{PIN}: no branch\n")
    (source,) = (s.source for s in plan.steps if s.source is not None)
    assert source.cherry_picks == (("3.10", PICK), ("", PIN))
    # the checkout's two steps (check the commit, apply the picks) have the network; the next step has not
    assert [(s.id, s.network) for s in plan.steps] == [("1.1", True), ("1.2", True), ("2", False)]


def test_without_permission_the_network_step_is_a_located_error() -> None:
    plan = _plan(f"main/{PICK}: fix\n")
    with pytest.raises(ConfigError) as e:
        check(plan, "demo.yaml")
    message = str(e.value)
    assert message.startswith("demo.yaml:6: pipeline step 1 (git-checkout): git-checkout cherry-picks")
    assert "--allow-network" in message and "network.host" in message and "\n" not in message
    check(plan, "demo.yaml", Permissions(network=True))  # allowed: no error


def test_only_the_cherry_picking_steps_get_the_network() -> None:
    allowed = _networks(_plan(f"main/{PICK}: fix\n"))
    assert ops_pb2.HOST in allowed
    assert allowed.count(ops_pb2.HOST) == 2 and set(allowed) == {ops_pb2.HOST, ops_pb2.NONE}
    definition = llb.marshal(build_graph(_plan(f"main/{PICK}: fix\n"), llb.scratch()).state)
    assert llb.required_entitlements(definition) == ("network.host",)
    assert set(_networks(_plan())) == {ops_pb2.NONE}  # no cherry-picks: no network anywhere
    check(_plan(), "demo.yaml")  # and nothing to allow


def test_capabilities_beyond_the_defaults_need_permission() -> None:
    plan = _plan(extra="capabilities:\n  add: [CAP_SYS_ADMIN]\n")
    with pytest.raises(
        ConfigError, match=r"^demo\.yaml: capabilities\.add CAP_SYS_ADMIN: .*--allow-insecure"
    ):
        check(plan, "demo.yaml", Permissions(network=True))
    check(plan, "demo.yaml", Permissions(insecure=True))
    check(
        _plan(extra="capabilities:\n  add: [CAP_NET_RAW]\n"), "demo.yaml"
    )  # a default one: nothing to allow
