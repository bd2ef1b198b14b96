"""A melange YAML trying to reach outside its source dir, on the CLIENT side (no daemon needed).

What the YAML controls and what can leave the sandbox:
- `uses:` names a file in the pipeline dirs: `..`, absolute names, backslashes and control characters are refused
  (ConfigError), so no file outside the pipeline dirs is read.
- `working-directory:`, `patches:` and every `runs:` are strings that only reach ExecOps: they run inside the
  BuildKit sandbox, whose filesystem is the environment plus the uploaded workspace, so `../../etc` there is the
  container's /etc. The client never opens them (checked below by recording every file the client opens).
- The workspace upload is the source dir only (`local_dirs`); symlinks in it are sent as links (their target text),
  never followed, and the workspace digest reads only the link text.
- Output paths come from package/subpackage names and the version, which must be plain names/versions (no '/'),
  so no .apk is written outside `OUT-DIR/ARCH/`.
- `environment.contents.keyring` / `repositories` may name local paths (as in melange): a key must parse as an RSA
  public key before anything is installed, and packages must be signed by one, so nothing else from the client
  reaches the daemon that way.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Iterator, List

import pytest

from melange_bk import llb
from melange_bk.buildkit.fssend import walk
from melange_bk.driver.builder import BuildRequest, prepare
from melange_bk.driver.llbgen import WORKSPACE
from melange_bk.errors import MelangeError
from melange_bk.plan.compile import compile_text

SECRET = b"TOP-SECRET-OUTSIDE-THE-SOURCE-DIR"


@pytest.fixture()
def layout(tmp_path: Path) -> Iterator[Path]:
    """tmp/outside/ (things the YAML must not reach), tmp/src/ (the source dir), tmp/pipelines/."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.patch").write_bytes(SECRET)
    (outside / "evil.yaml").write_text("runs: cat /dev/null # " + SECRET.decode() + "\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "ok.yaml").write_text("runs: echo ok\n")
    yield tmp_path


HEAD = "package:\n  name: esc\n  version: '1.0'\n  epoch: 0\n"


@pytest.mark.parametrize(
    "uses",
    [
        "../outside/evil",
        "../../outside/evil",
        "ok/../../outside/evil",
        "/tmp/outside/evil",
        "..\\outside\\evil",
    ],
)
def test_uses_cannot_leave_the_pipeline_dirs(layout: Path, uses: str) -> None:
    text = (
        HEAD + f"pipeline:\n  - uses: {uses!r}\n".replace("'", '"')
        if "\\" not in uses
        else HEAD + (f"pipeline:\n  - uses: '{uses}'\n")
    )
    with pytest.raises(MelangeError) as e:
        compile_text("melange.yaml", text, pipeline_dirs=(str(layout / "pipelines"),))
    assert "invalid pipeline name" in str(e.value) and "\n" not in str(e.value)


def _record_opens(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    opened: List[str] = []
    real_open, real_os_open = builtins.open, os.open

    def rec_open(file, *a, **kw):  # type: ignore[no-untyped-def]
        if isinstance(file, (str, bytes, os.PathLike)):
            opened.append(os.path.realpath(os.fsdecode(file)))
        return real_open(file, *a, **kw)

    def rec_os_open(path, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append(os.path.realpath(os.fsdecode(path)))
        return real_os_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", rec_open)
    monkeypatch.setattr(os, "open", rec_os_open)
    return opened


def test_paths_in_steps_stay_in_the_sandbox(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`working-directory: ../../outside`, a `patch` of `../outside/secret.patch`, a `runs:` reading it: the plan
    keeps them as container paths, and compiling and preparing the LLB open nothing outside the source and pipeline
    dirs."""
    src = layout / "src"
    outside = os.path.realpath(layout / "outside")
    patch_step = (
        "  - uses: patch\n    with:\n      patches: ../outside/secret.patch ../../../../tmp/x.patch\n"
    )
    steps = (
        "  - working-directory: ../../outside\n    runs: cat secret.patch ../../../etc/passwd\n  - uses: ok\n"
    )
    opened = _record_opens(monkeypatch)
    # the built-in patch pipeline (it needs the `patch` package, so it is compiled here, not prepared)
    plan = compile_text(
        "melange.yaml", HEAD + "pipeline:\n" + patch_step, pipeline_dirs=(str(layout / "pipelines"),)
    )
    yaml_path = src / "melange.yaml"
    yaml_path.write_text(HEAD + "pipeline:\n" + steps)
    prepared = prepare(BuildRequest(config_file=str(yaml_path), pipeline_dirs=(str(layout / "pipelines"),)))
    built, definition, local_dirs = prepared.plan, prepared.definition, dict(prepared.local_dirs)
    monkeypatch.undo()
    assert "../outside/secret.patch" in plan.steps[0].runs  # a path the step resolves inside the container
    assert built.steps[0].workdir == "/outside"  # /home/build/../../outside: a path inside the container
    assert not [p for p in opened if p == outside or p.startswith(outside + os.sep)], opened
    # the local directories offered to the daemon: the source dir, and the environment layer our installer made
    assert local_dirs.pop(WORKSPACE) == str(src)
    assert all(
        n.startswith("melange-bk-env-") and f"{os.sep}melange-bk{os.sep}layers{os.sep}" in d
        for n, d in local_dirs.items()
    ), local_dirs
    assert SECRET not in llb.to_bytes(definition)


def test_workspace_symlinks_are_sent_as_links(layout: Path) -> None:
    src = layout / "src"
    os.symlink("../outside/secret.patch", src / "leak")
    os.symlink(str(layout / "outside"), src / "leakdir")
    entries = {e.path: e for e in walk(str(src))}
    assert entries["leak"].stat.linkname == "../outside/secret.patch"
    assert "leakdir/secret.patch" not in entries  # a link to a directory is not descended
    assert not any(SECRET in e.stat.SerializeToString() for e in entries.values())


@pytest.mark.parametrize(
    "version, name",
    [("1.0/../../../x", "esc"), ("..", "esc"), ("1.0", "../esc"), ("1.0", "a/b")],
)
def test_output_names_cannot_contain_paths(version: str, name: str) -> None:
    with pytest.raises(MelangeError, match="is not a valid package"):
        compile_text("melange.yaml", f"package:\n  name: '{name}'\n  version: '{version}'\n  epoch: 0\n")


def test_subpackage_names_cannot_contain_paths() -> None:
    with pytest.raises(MelangeError, match="is not a valid package name"):
        compile_text("melange.yaml", HEAD + "subpackages:\n  - name: ../../evil\n")
