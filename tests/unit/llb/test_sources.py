from __future__ import annotations

import json

import pytest

from melange_bk import llb
from melange_bk.errors import MelangeError

DIGEST = "sha256:" + "ab" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def only_source(state: llb.State, platform: llb.Platform | None = None):
    defn = llb.marshal(state, platform=platform)
    ops = llb.decode_ops(defn)
    assert len(ops) == 2  # the source and the final op
    dgst, op = ops[0]
    assert op.WhichOneof("op") == "source"
    return dgst, op, defn.metadata[dgst]


def test_local_attrs_caps_and_stable_unique() -> None:
    st = llb.local("rootfs", include=["usr/", "etc/"], exclude=["*.tmp", "!keep.tmp"], shared_key="rootfs-x")
    _, op, md = only_source(st)
    assert op.source.identifier == "local://rootfs"
    attrs = dict(op.source.attrs)
    assert json.loads(attrs["local.includepattern"]) == ["usr/", "etc/"]  # order kept, not sorted
    assert json.loads(attrs["local.excludepatterns"]) == ["*.tmp", "!keep.tmp"]
    assert attrs["local.sharedkeyhint"] == "rootfs-x"
    assert (
        attrs["local.unique"]
        == only_source(llb.local("rootfs", ["usr/", "etc/"], ["*.tmp", "!keep.tmp"], "rootfs-x"))[
            1
        ].source.attrs["local.unique"]
    )
    assert sorted(md.caps) == [
        "source.local",
        "source.local.excludepatterns",
        "source.local.includepatterns",
        "source.local.sharedkeyhint",
        "source.local.unique",
    ]
    assert not op.HasField("platform")


def test_local_unique_depends_on_parameters_and_can_be_given() -> None:
    a = only_source(llb.local("a"))[1].source.attrs["local.unique"]
    b = only_source(llb.local("b"))[1].source.attrs["local.unique"]
    c = only_source(llb.local("a", exclude=["x"]))[1].source.attrs["local.unique"]
    assert len({a, b, c}) == 3
    assert only_source(llb.local("a", unique="mine"))[1].source.attrs["local.unique"] == "mine"


def test_local_patterns_json_like_go() -> None:
    _, op, _ = only_source(llb.local("ctx", include=["a<b>&c", "é"]))
    assert op.source.attrs["local.includepattern"] == '["a\\u003cb\\u003e\\u0026c","é"]'


def test_local_rejects_string_patterns() -> None:
    with pytest.raises(MelangeError, match="sequence"):
        llb.local("ctx", include="usr/")


@pytest.mark.parametrize(
    "ref,expected",
    [
        (f"alpine@{DIGEST}", f"docker.io/library/alpine@{DIGEST}"),
        (f"chainguard/wolfi-base@{DIGEST}", f"docker.io/chainguard/wolfi-base@{DIGEST}"),
        (f"cgr.dev/chainguard/wolfi-base:latest@{DIGEST}", f"cgr.dev/chainguard/wolfi-base:latest@{DIGEST}"),
        (f"localhost:5000/x@{DIGEST}", f"localhost:5000/x@{DIGEST}"),
        (f"index.docker.io/library/busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
    ],
)
def test_image_ref_normalized(ref: str, expected: str) -> None:
    assert llb.normalize_image_ref(ref) == expected


@pytest.mark.parametrize("ref", ["alpine", "alpine:3.19", "alpine@sha256:abc", f"Alpine@{DIGEST}"])
def test_image_without_digest_refused(ref: str) -> None:
    with pytest.raises(MelangeError) as exc:
        llb.image(ref)
    assert ref in str(exc.value)


def test_image_is_platform_specific() -> None:
    plat = llb.Platform.parse("linux/arm64/v8")
    _, op, md = only_source(llb.image(f"busybox@{DIGEST}"), platform=plat)
    assert op.source.identifier == f"docker-image://docker.io/library/busybox@{DIGEST}"
    assert (op.platform.OS, op.platform.Architecture, op.platform.Variant) == ("linux", "arm64", "v8")
    assert list(md.caps) == ["source.image"]
    # its own platform wins; no platform at all leaves it empty
    own = llb.image(f"busybox@{DIGEST}", platform=llb.Platform("linux", "amd64"))
    assert only_source(own, platform=plat)[1].platform.Architecture == "amd64"
    assert not only_source(llb.image(f"busybox@{DIGEST}"))[1].HasField("platform")


def test_http_source() -> None:
    st = llb.http("https://example.org/x.tar.gz", checksum=DIGEST, filename="x.tgz", chmod=0o755)
    _, op, md = only_source(st, platform=llb.Platform("linux", "amd64"))
    assert op.source.identifier == "https://example.org/x.tar.gz"
    assert dict(op.source.attrs) == {"http.checksum": DIGEST, "http.filename": "x.tgz", "http.perm": "0755"}
    assert sorted(md.caps) == ["source.http", "source.http.checksum", "source.http.perm"]
    assert not op.HasField("platform")


@pytest.mark.parametrize("checksum", ["", "sha256:xyz", "md5:" + "a" * 32])
def test_http_needs_checksum(checksum: str) -> None:
    with pytest.raises(MelangeError, match="checksum"):
        llb.http("https://example.org/x", checksum=checksum)


def test_git_source() -> None:
    _, op, md = only_source(
        llb.git("https://github.com/chainguard-dev/melange.git", COMMIT, keep_git_dir=True)
    )
    assert op.source.identifier == f"git://github.com/chainguard-dev/melange.git#{COMMIT}"
    assert dict(op.source.attrs) == {
        "git.authheadersecret": "GIT_AUTH_HEADER",
        "git.authtokensecret": "GIT_AUTH_TOKEN",
        "git.fullurl": "https://github.com/chainguard-dev/melange.git",
        "git.keepgitdir": "true",
    }
    assert sorted(md.caps) == ["source.git", "source.git.fullurl", "source.git.keepgitdir"]
    plain = only_source(llb.git("https://github.com/a/b", COMMIT))[1]
    assert "git.keepgitdir" not in plain.source.attrs


@pytest.mark.parametrize(
    "url,commit",
    [("https://github.com/a/b", "main"), ("git@github.com:a/b.git", COMMIT), ("https://h/a#main", COMMIT)],
)
def test_git_refuses_moving_or_unsupported(url: str, commit: str) -> None:
    with pytest.raises(MelangeError):
        llb.git(url, commit)


def test_custom_name_goes_to_metadata() -> None:
    defn = llb.marshal(llb.local("ctx", custom_name="load context"))
    dgst, _ = llb.decode_ops(defn)[0]
    assert dict(defn.metadata[dgst].description) == {"llb.customname": "load context"}
    final = llb.decode_ops(defn)[-1][0]
    assert defn.metadata[final].caps["meta.description"]
