"""melange's package fields in what we write: .PKGINFO builddate/url/commit, the SBOM's CPE; and the YAML's
top-level capabilities as the steps' security mode (and the entitlement a solve then asks for)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from melange_bk import llb
from melange_bk.apk.reader import iter_data, read_apk
from melange_bk.driver.llbgen import build_graph
from melange_bk.driver.package import write_packages
from melange_bk.errors import ConfigError
from melange_bk.llb import LLBError
from melange_bk.plan.compile import compile_text

COMMIT = "0123456789abcdef0123456789abcdef01234567"
EPOCH = 1700000000


def _plan(extra: str = "", pipeline: str = "  - runs: mkdir -p ${{targets.destdir}}/usr/share/demo\n"):
    text = textwrap.dedent(
        """\
        package:
          name: demo
          version: 1.2.3
          epoch: 1
          description: a demo
          url: https://example.org/demo
        """
    )
    return compile_text("demo.yaml", text + extra + "pipeline:\n" + pipeline)


def _write(plan, tmp_path: Path):  # type: ignore[no-untyped-def]
    out = tmp_path / "melange-out"
    (out / "demo" / "usr/share/demo").mkdir(parents=True)
    (out / "demo" / "usr/share/demo/README").write_text("hi\n")
    (tmp_path / "apks").mkdir()
    written = write_packages(
        plan, str(out), str(tmp_path / "apks"), signing_key=None, source_date_epoch=EPOCH
    )
    return read_apk(written[0].path)


def _sbom(path: str) -> dict:
    for member, f in iter_data(path):
        if member.name.startswith("var/lib/db/sbom/") and f is not None:
            return json.loads(f.read())
    raise AssertionError("no SBOM")


def test_pkginfo_builddate_url_and_checkout_commit(tmp_path: Path) -> None:
    plan = _plan(
        pipeline=f"""\
  - uses: git-checkout
    with:
      repository: https://example.org/demo.git
      tag: v1.2.3
      expected-commit: {COMMIT}
"""
    )
    apk = _write(plan, tmp_path)
    text = apk.control_file(".PKGINFO").decode()
    assert f"builddate = {EPOCH}\n" in text
    assert "url = https://example.org/demo\n" in text
    assert f"commit = {COMMIT}\n" in text
    assert apk.info.builddate == EPOCH and apk.info.commit == COMMIT


def test_package_commit_wins_and_no_checkout_leaves_it_empty(tmp_path: Path) -> None:
    assert _write(_plan(), tmp_path).info.commit == ""
    plan = compile_text(
        "demo.yaml",
        "package: {name: demo, version: 1.2.3, epoch: 1, commit: feedface}\npipeline:\n  - runs: 'true'\n",
    )
    assert _write(plan, tmp_path / "own").info.commit == "feedface"


def test_sbom_carries_the_cpe(tmp_path: Path) -> None:
    plan = _plan(extra="  cpe:\n    vendor: gnu\n    product: demo\n    target_hw: x64\n")
    assert plan.package.cpe == "cpe:2.3:a:gnu:demo:1.2.3:*:*:*:*:*:x64:*"
    refs = _sbom(_write(plan, tmp_path).path)["packages"][0]["externalRefs"]
    assert {
        "referenceCategory": "SECURITY",
        "referenceLocator": "cpe:2.3:a:gnu:demo:1.2.3:*:*:*:*:*:x64:*",
        "referenceType": "cpe23Type",
    } in refs


def test_no_cpe_no_security_reference(tmp_path: Path) -> None:
    plan = _plan(extra="  cpe: {}\n")
    assert plan.package.cpe == ""
    refs = _sbom(_write(plan, tmp_path).path)["packages"][0]["externalRefs"]
    assert [r["referenceType"] for r in refs] == ["purl"]


@pytest.mark.parametrize(
    "cpe,message",
    [
        ("{vendor: gnu}", "package.cpe.product must be given exactly"),
        ("{vendor: gnu, product: demo, part: x}", "package.cpe.part must be one of a, h, o"),
        ("{vendor: 'g:nu', product: demo}", "must not contain a colon"),
    ],
)
def test_bad_cpe_is_a_located_error(cpe: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        _plan(extra=f"  cpe: {cpe}\n")
    assert str(e.value).startswith("demo.yaml:")


def test_capabilities_beyond_the_defaults_make_insecure_steps() -> None:
    plan = _plan(extra="capabilities:\n  add: [CAP_SYS_ADMIN, sys_resource]\n")
    assert plan.capabilities.add == ("CAP_SYS_ADMIN", "CAP_SYS_RESOURCE")
    definition = llb.marshal(build_graph(plan, llb.scratch()).state)
    assert llb.required_entitlements(definition) == ("security.insecure",)
    plain = llb.marshal(build_graph(_plan(), llb.scratch()).state)
    assert llb.required_entitlements(plain) == ()
    within = _plan(extra="capabilities:\n  add: [CAP_NET_RAW]\n")  # a default one: nothing more to grant
    assert llb.required_entitlements(llb.marshal(build_graph(within, llb.scratch()).state)) == ()


def test_capabilities_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"demo.yaml:\d+: capabilities.add: 'CAP_FLY' is not a Linux capability"
    ):
        _plan(extra="capabilities:\n  add: [CAP_FLY]\n")
    plan = _plan(extra="capabilities:\n  drop: [CAP_NET_RAW]\n")
    with pytest.raises(LLBError, match=r"capabilities.drop \(CAP_NET_RAW\) is not supported"):
        build_graph(plan, llb.scratch())
    # Dropping one a step never has is a no-op, as in melange.
    build_graph(_plan(extra="capabilities:\n  drop: [CAP_SYS_ADMIN]\n"), llb.scratch())
