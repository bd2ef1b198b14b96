"""A layer's symlinks never replace what a local base already has (busybox applets over Debian's GNU tools)."""

from __future__ import annotations

import os
from pathlib import Path

from melange_bk import llb
from melange_bk.environment.installer import shadowed_by_base
from melange_bk.environment.loader import layer_tree


def test_only_symlinks_that_the_base_has_are_shadowed(tmp_path: Path) -> None:
    base, layer = tmp_path / "base", tmp_path / "layer"
    (base / "usr/bin").mkdir(parents=True)
    (base / "usr/bin/tar").write_text("GNU tar")
    os.symlink("dash", base / "usr/bin/sh")
    os.symlink("usr/bin", base / "bin")
    (layer / "usr/bin").mkdir(parents=True)
    (layer / "usr/bin/busybox").write_text("busybox")
    for applet in ("tar", "sh", "[", "ash"):
        os.symlink("busybox", layer / "usr/bin" / applet)
    (layer / "usr/lib").mkdir()
    (layer / "usr/lib/libx.so.1").write_text("x")
    # `[` exists in the base too: escaped, so that it is a literal pattern
    (base / "usr/bin/[").write_text("test")
    assert shadowed_by_base(str(layer), str(base)) == ("usr/bin/\\[", "usr/bin/sh", "usr/bin/tar")


def test_a_link_out_of_the_base_is_not_followed(tmp_path: Path) -> None:
    base, layer, outside = tmp_path / "base", tmp_path / "layer", tmp_path / "outside"
    (outside / "bin").mkdir(parents=True)
    (outside / "bin/tar").write_text("host tar")
    base.mkdir()
    os.symlink(str(outside), base / "opt")
    (layer / "opt/bin").mkdir(parents=True)
    os.symlink("busybox", layer / "opt/bin/tar")
    assert shadowed_by_base(str(layer), str(base)) == ()


def test_excluded_paths_reach_the_layers_local_source() -> None:
    plain = layer_tree("layer", "0" * 64)
    kept = layer_tree("layer", "0" * 64, exclude=("usr/bin/tar",))
    assert plain.ref != kept.ref  # another image: the layer's identity covers what is left out
    assert b"usr/bin/tar" not in llb.marshal(plain.load_state()).SerializeToString()
    assert b'["usr/bin/tar"]' in llb.marshal(kept.load_state()).SerializeToString()
