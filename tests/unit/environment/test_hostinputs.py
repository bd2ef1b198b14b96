"""melange_bk.environment.hostinputs: machine-local inputs are keyed by content, resolved by path, and checked before use."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from melange_bk.environment import hostinputs
from melange_bk.errors import ConfigError


def _args(**kw: object) -> argparse.Namespace:
    base = dict(host_config="", host_input=[], rootfs="", repository_append=[], keyring_append=[],
                signing_key="", pipeline_dir=[], buildkit_addr=None, tlscacert=None)  # fmt: skip
    base.update(kw)
    return argparse.Namespace(**base)


def _files(tmp_path) -> dict:  # type: ignore[no-untyped-def]
    rootfs = tmp_path / "m1" / "rootfs.tar"
    rootfs.parent.mkdir()
    rootfs.write_bytes(b"tar" * 1000)
    repo = tmp_path / "m1" / "repo" / "x86_64"
    repo.mkdir(parents=True)
    (repo / "APKINDEX.tar.gz").write_bytes(b"index")
    (repo / "a-1.apk").write_bytes(b"apk")
    return {"rootfs": ("path", str(rootfs)), "repository.0": ("repository", str(repo.parent))}


def test_identity_is_content_not_location(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inputs = _files(tmp_path)
    ids1 = hostinputs.write(str(tmp_path / "h1.json"), inputs, {"buildkit_addr": "unix:///a.sock"})
    moved = tmp_path / "elsewhere"
    os.rename(tmp_path / "m1", moved)
    inputs2 = {k: (kind, p.replace(str(tmp_path / "m1"), str(moved))) for k, (kind, p) in inputs.items()}
    ids2 = hostinputs.write(str(tmp_path / "h2.json"), inputs2, {"buildkit_addr": "tcp://b:1"})
    assert ids1 == ids2
    assert ids1["rootfs"].startswith("rootfs.tar:sha256:")
    assert ids1["repository.0"].startswith("index-sha256:")
    (moved / "repo" / "x86_64" / "APKINDEX.tar.gz").write_bytes(b"another index")
    assert hostinputs.write(str(tmp_path / "h3.json"), inputs2, {})["repository.0"] != ids1["repository.0"]


def test_resolve_replaces_host_values_and_fills_the_daemon(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inputs = _files(tmp_path)
    cfg = str(tmp_path / "host.json")
    ids = hostinputs.write(cfg, inputs, {"buildkit_addr": "unix:///a.sock"})
    args = _args(
        host_config=cfg,
        host_input=[f"{k}={v}" for k, v in ids.items()],
        rootfs="tar:@host:rootfs",
        repository_append=["@host:repository.0", "__deps/0"],
    )
    hostinputs.resolve_host_args(args)
    assert args.rootfs == "tar:" + inputs["rootfs"][1]
    assert args.repository_append == [inputs["repository.0"][1], "__deps/0"]
    assert args.buildkit_addr == "unix:///a.sock"
    with open(cfg) as f:
        assert json.load(f)["inputs"]["rootfs"]["stat"]


def test_changed_or_unkeyed_inputs_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inputs = _files(tmp_path)
    cfg = str(tmp_path / "host.json")
    ids = hostinputs.write(cfg, inputs, {})
    with pytest.raises(ConfigError, match="no --host-input rootfs"):
        hostinputs.resolve_host_args(_args(host_config=cfg, rootfs="@host:rootfs"))
    with open(inputs["rootfs"][1], "ab") as f:
        f.write(b"changed")
    with pytest.raises(ConfigError, match="changed since Pants measured it"):
        hostinputs.resolve_host_args(
            _args(host_config=cfg, host_input=[f"rootfs={ids['rootfs']}"], rootfs="@host:rootfs")
        )
    with pytest.raises(ConfigError, match="needs --host-config"):
        hostinputs.resolve_host_args(_args(rootfs="@host:rootfs"))


def test_probe_sources_are_the_import_closure_of_host_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The Pants rule runs `melange-bk host-config` from a handful of source files (no PEX, no third-party
    libraries): the list in pants/host.py must be exactly what the command imports."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import melange_bk

    root = Path(melange_bk.__file__).resolve().parent
    tree = ast.parse((root / "pants" / "host.py").read_text())
    listed = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") == "PROBE_SOURCES" for t in node.targets
        ):
            listed = sorted(ast.literal_eval(node.value))
    assert listed is not None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = tmp_path / "k.rsa"
    key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    code = (
        "import sys\n"
        "from melange_bk.cli.main import main\n"
        "try:\n    main(['host-config', '--help'])\nexcept SystemExit:\n    pass\n"
        f"main(['host-config', '--out', {str(tmp_path / 'host.json')!r}, '--input', 'key=signing-key:{key}',"
        f" '--input', 'data=file:{key}'])\n"
        "mods = [m for m in sys.modules.values() if getattr(m, '__file__', None)]\n"
        "print('\\n'.join(sorted('MOD:' + m.__name__ + '=' + m.__file__ for m in mods)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(root.parent), "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    out = [line[len("MOD:") :] for line in out if line.startswith("MOD:")]
    ours = sorted(
        str(Path(f).resolve().relative_to(root))
        for name, f in (line.split("=", 1) for line in out)
        if name.startswith("melange_bk")
    )
    third_party = [
        n
        for n, _ in (line.split("=", 1) for line in out)
        if n.split(".")[0] in ("yaml", "grpc", "google", "cryptography", "networkx", "elftools")
    ]
    assert ours == listed
    assert third_party == []


def test_public_key_identity_matches_cryptography(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The probe derives the public key's fingerprint with the standard library; it must equal the DER SPKI that
    cryptography produces, for PKCS#1 and PKCS#8 private keys and for the public key itself."""
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from melange_bk.environment.hostinputs import _spki_sha256

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hashlib.sha256(spki).hexdigest()
    files = {
        "pkcs1.rsa": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
        "pkcs8.rsa": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "pub.rsa.pub": key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert _spki_sha256(str(tmp_path / name)) == expected, name


def test_stat_stamp_follows_every_change_it_must_see(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inputs = _files(tmp_path)
    rootfs, repo = inputs["rootfs"][1], inputs["repository.0"][1]
    recorded = str(tmp_path / "cache" / "host.json")
    paths = [rootfs, repo, recorded]
    stamps = [hostinputs.stat_stamp(paths)]
    assert hostinputs.stat_stamp(reversed(paths)) == stamps[0]  # order-free, and equal while nothing changed

    def changed() -> bool:
        stamps.append(hostinputs.stat_stamp(paths))
        return stamps[-1] != stamps[-2]

    hostinputs.write(recorded, {"rootfs": inputs["rootfs"]}, {})
    assert changed()  # the recorded file appeared
    st = os.stat(recorded)
    hostinputs.write(recorded, {"rootfs": inputs["rootfs"]}, {})
    assert not changed()  # an unchanged configuration is not rewritten
    assert os.stat(recorded).st_ino == st.st_ino and os.stat(recorded).st_mtime_ns == st.st_mtime_ns
    with open(rootfs, "ab") as f:
        f.write(b"more")
    assert changed()
    os.utime(os.path.join(repo, "x86_64", "a-1.apk"), ns=(1, 1))  # deep in a folder, same size
    assert changed()
    os.rename(rootfs, rootfs + ".old")
    assert changed()  # missing
    with open(rootfs, "wb") as f:
        f.write(b"tar" * 1000)
    assert changed()  # replaced (another inode)
    os.unlink(recorded)
    assert changed()
    link = str(tmp_path / "rootfs-link.tar")
    os.symlink(rootfs, link)
    paths[0] = link
    assert changed()
    with open(rootfs, "ab") as f:  # through the link: the link itself is unchanged
        f.write(b"more")
    assert changed()
