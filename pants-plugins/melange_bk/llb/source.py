"""Source ops: local directories, images (pinned by digest), HTTP files (pinned by checksum), git commits.

Identifiers, attributes and capabilities follow moby/buildkit client/llb/source.go, except that everything is
pinned and stable: `local.unique` is derived from the source's own parameters instead of being random, image
references must carry a digest, HTTP sources a checksum and git sources a full commit id.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple

from melange_bk.llb.state import (
    InputResolver,
    LLBError,
    OpSpec,
    Output,
    Platform,
    State,
    Vertex,
    clean_path,
    description,
    new_op,
)

# Attribute keys (solver/pb/attr.go).
ATTR_LOCAL_UNIQUE = "local.unique"
ATTR_LOCAL_INCLUDE = "local.includepattern"
ATTR_LOCAL_EXCLUDE = "local.excludepatterns"
ATTR_LOCAL_FOLLOW = "local.followpaths"
ATTR_LOCAL_SHARED_KEY = "local.sharedkeyhint"
ATTR_HTTP_CHECKSUM = "http.checksum"
ATTR_HTTP_FILENAME = "http.filename"
ATTR_HTTP_PERM = "http.perm"
ATTR_GIT_KEEP_DIR = "git.keepgitdir"
ATTR_GIT_FULL_URL = "git.fullurl"
ATTR_GIT_AUTH_TOKEN = "git.authtokensecret"
ATTR_GIT_AUTH_HEADER = "git.authheadersecret"
ATTR_IMAGE_RESOLVE_MODE = "image.resolvemode"
# The domain of images the client stores in the daemon itself (see `stored_image`): `.invalid` never resolves,
# so a missing image fails at once and no registry is ever asked for it.
STORED_DOMAIN = "melange-bk.invalid"

_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$")
_IMAGE_RE = re.compile(r"^(?P<name>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_STORED_RE = re.compile(
    r"^" + re.escape(STORED_DOMAIN) + r"/[a-z0-9]+(?:-[a-z0-9]+)*:[a-z0-9][a-z0-9.-]{0,127}$"
)
_COMMIT_RE = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class SourceOp(Vertex):
    """A source op: `identifier` plus sorted `attrs`. Only image sources are platform-specific."""

    identifier: str
    attrs: Tuple[Tuple[str, str], ...] = ()
    caps: Tuple[str, ...] = ()
    platform: Optional[Platform] = None
    name: Optional[str] = None

    def inputs(self) -> Tuple[Output, ...]:
        return ()

    @property
    def platform_specific(self) -> bool:
        return self.identifier.startswith(("docker-image://", "oci-layout://"))

    def to_spec(self, resolve: InputResolver, platform: Optional[Platform]) -> OpSpec:
        op = new_op((self.platform or platform) if self.platform_specific else None)
        op.source.identifier = self.identifier
        for key, value in self.attrs:
            op.source.attrs[key] = value
        return OpSpec(op=op, caps=self.caps, description=description(self.name))


def _go_json(values: Sequence[str]) -> str:
    """A JSON array of strings as Go's encoding/json writes it (compact, `<`, `>`, `&` escaped)."""
    text = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _strings(value: Iterable[str], what: str) -> Tuple[str, ...]:
    if isinstance(value, str):
        raise LLBError(f"{what} must be a sequence of strings, not the string {value!r}")
    return tuple(value)


def local(
    name: str,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    shared_key: Optional[str] = None,
    follow_paths: Iterable[str] = (),
    unique: Optional[str] = None,
    custom_name: Optional[str] = None,
) -> State:
    """A directory sent by the client's session under `name` (`local://name`).

    Patterns keep their order (later `!` patterns override earlier ones). `unique` defaults to a digest of the
    other parameters, so the same local source marshals to the same bytes every time (Go uses a random value).
    """
    if not name:
        raise LLBError("local source needs a name")
    include_t = _strings(include, "include patterns")
    exclude_t = _strings(exclude, "exclude patterns")
    follow_t = _strings(follow_paths, "follow paths")
    attrs = {}
    caps = ["source.local", "source.local.unique"]
    if include_t:
        attrs[ATTR_LOCAL_INCLUDE] = _go_json(include_t)
        caps.append("source.local.includepatterns")
    if follow_t:
        attrs[ATTR_LOCAL_FOLLOW] = _go_json(follow_t)
        caps.append("source.local.followpaths")
    if exclude_t:
        attrs[ATTR_LOCAL_EXCLUDE] = _go_json(exclude_t)
        caps.append("source.local.excludepatterns")
    if shared_key:
        attrs[ATTR_LOCAL_SHARED_KEY] = shared_key
        caps.append("source.local.sharedkeyhint")
    if unique is not None and (not unique or any(ord(c) < 32 for c in unique)):
        raise LLBError(f"local source {name!r}: unique id {unique!r} must be a non-empty printable string")
    if unique is None:
        canonical = json.dumps(
            [name, list(include_t), list(exclude_t), list(follow_t), shared_key or ""],
            separators=(",", ":"),
            ensure_ascii=True,
        )
        unique = "melange-bk-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
    attrs[ATTR_LOCAL_UNIQUE] = unique
    vertex = SourceOp(
        identifier="local://" + name,
        attrs=tuple(sorted(attrs.items())),
        caps=tuple(sorted(caps)),
        name=custom_name,
    )
    return State(Output(vertex))


def normalize_image_ref(ref: str) -> str:
    """`alpine@sha256:…` → `docker.io/library/alpine@sha256:…`; refuses references without a digest."""
    m = _IMAGE_RE.match(ref.strip())
    if not m:
        raise LLBError(
            f"image reference {ref!r} is not pinned by digest: use NAME[:TAG]@sha256:<64 hex digits> "
            "so the build is reproducible"
        )
    name, digest = m.group("name"), m.group("digest")
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise LLBError(f"image reference {ref!r} has an invalid tag {tag!r}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, path = parts[0], parts[1:]
    else:
        domain, path = "docker.io", parts
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and len(path) == 1:
        path = ["library"] + path
    for component in path:
        if not _PATH_COMPONENT_RE.match(component):
            raise LLBError(f"image reference {ref!r} has an invalid repository name component {component!r}")
    return f"{domain}/{'/'.join(path)}" + (f":{tag}" if tag else "") + f"@{digest}"


def image(ref: str, platform: Optional[Platform] = None, custom_name: Optional[str] = None) -> State:
    """A registry image, which must be pinned by digest. `platform` overrides the one given to `marshal`."""
    vertex = SourceOp(
        identifier="docker-image://" + normalize_image_ref(ref),
        caps=("source.image",),
        platform=platform,
        name=custom_name,
    )
    return State(Output(vertex))


def stored_image(ref: str, custom_name: Optional[str] = None) -> State:
    """An image the client stored in the daemon itself, `melange-bk.invalid/NAME:TAG` with the tag a content
    identity, read from the daemon's own image store (`image.resolvemode` local) and never from a registry. Its
    cache key is the image's config digest: stable across sessions, unlike a local source's."""
    if not _STORED_RE.match(ref):
        raise LLBError(f"stored image reference {ref!r} must be {STORED_DOMAIN}/NAME:TAG")
    vertex = SourceOp(
        identifier="docker-image://" + ref,
        attrs=((ATTR_IMAGE_RESOLVE_MODE, "local"),),
        caps=("source.image", "source.image.resolvemode"),
        name=custom_name,
    )
    return State(Output(vertex))


def http(
    url: str,
    checksum: str,
    filename: Optional[str] = None,
    chmod: Optional[int] = None,
    custom_name: Optional[str] = None,
) -> State:
    """A single file downloaded from `url`, verified against `checksum` (`sha256:<hex>`)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise LLBError(f"http source {url!r} must be an http:// or https:// URL")
    if not _DIGEST_RE.match(checksum or ""):
        raise LLBError(f"http source {url!r} needs a checksum like sha256:<64 hex digits>, got {checksum!r}")
    attrs = {ATTR_HTTP_CHECKSUM: checksum}
    caps = ["source.http", "source.http.checksum"]
    if filename:
        if "/" in filename:
            raise LLBError(f"http source filename {filename!r} must not contain '/'")
        attrs[ATTR_HTTP_FILENAME] = filename
    if chmod:
        attrs[ATTR_HTTP_PERM] = "0" + format(chmod & 0o777, "o")
        caps.append("source.http.perm")
    vertex = SourceOp(
        identifier=url, attrs=tuple(sorted(attrs.items())), caps=tuple(sorted(caps)), name=custom_name
    )
    return State(Output(vertex))


def git(url: str, commit: str, keep_git_dir: bool = False, custom_name: Optional[str] = None) -> State:
    """A git repository checked out at `commit` (a full 40- or 64-hex commit id; branches and tags move).

    Only `https://`, `http://` and `git://` remotes: SSH remotes would need host keys and an agent socket.
    """
    if not _COMMIT_RE.match(commit or ""):
        raise LLBError(f"git source {url!r} needs a full commit id (40 hex digits), got {commit!r}")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http", "git"):
        raise LLBError(f"git source {url!r}: only https://, http:// and git:// remotes are supported")
    if parts.fragment or parts.query:
        raise LLBError(f"git source {url!r}: give the commit separately, not as a #fragment or ?query")
    if not parts.netloc:
        raise LLBError(f"git source {url!r} has no host")
    host = parts.netloc.rsplit("@", 1)[-1]
    path = clean_path("/" + parts.path)
    identifier = "git://" + host + path + "#" + commit
    attrs = {
        ATTR_GIT_FULL_URL: url,
        ATTR_GIT_AUTH_TOKEN: "GIT_AUTH_TOKEN",
        ATTR_GIT_AUTH_HEADER: "GIT_AUTH_HEADER",
    }
    caps = ["source.git", "source.git.fullurl"]
    if keep_git_dir:
        attrs[ATTR_GIT_KEEP_DIR] = "true"
        caps.append("source.git.keepgitdir")
    vertex = SourceOp(
        identifier=identifier, attrs=tuple(sorted(attrs.items())), caps=tuple(sorted(caps)), name=custom_name
    )
    return State(Output(vertex))
