"""File ops: mkdir, mkfile, copy and rm, chained into one FileOp as Go's `state.File(a.Mkdir(…).Copy(…))` does.

The first action reads the base state; each later action reads the previous action's result (input index
`len(inputs) + i - 1`); only the last action has an output. Timestamps are either given (seconds since the epoch,
e.g. SOURCE_DATE_EPOCH) or left unset (-1); never the current time. File ops carry no platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple, Union

from melange_bk.llb.state import (
    InputResolver,
    LLBError,
    OpSpec,
    Output,
    Platform,
    State,
    Vertex,
    abs_path,
    description,
    new_op,
)
from melange_bk.protos import ops_pb2

UserRef = Union[int, str]


@dataclass(frozen=True)
class Owner:
    """Owner of created files: numeric ids or names (names are looked up in the base state's /etc/passwd)."""

    user: Optional[UserRef] = None
    group: Optional[UserRef] = None


OwnerLike = Union[Owner, Tuple[UserRef, UserRef], str, None]


def _owner(value: OwnerLike) -> Optional[Owner]:
    if value is None or isinstance(value, Owner):
        return value
    if isinstance(value, str):
        user, _, group = value.partition(":")
        return Owner(_user_ref(user), _user_ref(group) if group else None)
    if isinstance(value, tuple) and len(value) == 2:
        return Owner(_user_ref(value[0]), _user_ref(value[1]))
    raise LLBError(f"invalid owner {value!r}: use Owner(...), (uid, gid) or 'user[:group]'")


def _user_ref(value: UserRef) -> UserRef:
    if isinstance(value, bool):
        raise LLBError(f"invalid user or group {value!r}")
    if isinstance(value, int):
        if not 0 <= value < 2**32:
            raise LLBError(f"user or group id {value} out of range")
        return value
    if value.isdigit():
        return _user_ref(int(value))
    if not value:
        raise LLBError("empty user or group name")
    return value


def _timestamp_ns(seconds: Optional[int]) -> int:
    if seconds is None:
        return -1
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise LLBError(f"timestamp must be a non-negative integer number of seconds, got {seconds!r}")
    return seconds * 1_000_000_000


@dataclass(frozen=True)
class Mkdir:
    path: str
    mode: int = 0o755
    make_parents: bool = False
    owner: Optional[Owner] = None
    timestamp: Optional[int] = None


@dataclass(frozen=True)
class Mkfile:
    path: str
    mode: int = 0o644
    data: bytes = b""
    owner: Optional[Owner] = None
    timestamp: Optional[int] = None


@dataclass(frozen=True)
class Copy:
    source: State
    src: str
    dest: str
    mode: Optional[int] = None  # None: keep the source's mode
    owner: Optional[Owner] = None
    follow_symlinks: bool = False
    copy_dir_contents: bool = False
    create_dest_path: bool = False
    allow_wildcard: bool = False
    allow_empty_wildcard: bool = False
    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    timestamp: Optional[int] = None


@dataclass(frozen=True)
class Rm:
    path: str
    allow_not_found: bool = False
    allow_wildcard: bool = False


Action = Union[Mkdir, Mkfile, Copy, Rm]


def _patterns(value: Iterable[str], what: str) -> Tuple[str, ...]:
    if isinstance(value, str):
        raise LLBError(f"{what} must be a sequence of patterns, not the string {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class FileActions:
    """An ordered chain of file actions; apply it to a state with `file(state, actions)`."""

    actions: Tuple[Action, ...] = ()

    def _then(self, action: Action) -> FileActions:
        return FileActions(self.actions + (action,))

    def mkdir(
        self,
        path: str,
        mode: int = 0o755,
        *,
        make_parents: bool = False,
        owner: OwnerLike = None,
        timestamp: Optional[int] = None,
    ) -> FileActions:
        _timestamp_ns(timestamp)
        return self._then(Mkdir(abs_path(path), mode & 0o7777, make_parents, _owner(owner), timestamp))

    def mkfile(
        self,
        path: str,
        mode: int = 0o644,
        data: Union[bytes, str] = b"",
        *,
        owner: OwnerLike = None,
        timestamp: Optional[int] = None,
    ) -> FileActions:
        _timestamp_ns(timestamp)
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return self._then(Mkfile(abs_path(path), mode & 0o7777, raw, _owner(owner), timestamp))

    def copy(
        self,
        source: State,
        src: str,
        dest: str,
        *,
        mode: Optional[int] = None,
        owner: OwnerLike = None,
        follow_symlinks: bool = False,
        copy_dir_contents: bool = False,
        create_dest_path: bool = False,
        allow_wildcard: bool = False,
        allow_empty_wildcard: bool = False,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        timestamp: Optional[int] = None,
    ) -> FileActions:
        _timestamp_ns(timestamp)
        if not isinstance(source, State):
            raise LLBError(f"copy source must be a State, got {type(source).__name__}")
        return self._then(
            Copy(
                source=source,
                src=abs_path(src),
                dest=abs_path(dest, keep_slash=True),
                mode=None if mode is None else mode & 0o7777,
                owner=_owner(owner),
                follow_symlinks=follow_symlinks,
                copy_dir_contents=copy_dir_contents,
                create_dest_path=create_dest_path,
                allow_wildcard=allow_wildcard,
                allow_empty_wildcard=allow_empty_wildcard,
                include=_patterns(include, "include"),
                exclude=_patterns(exclude, "exclude"),
                timestamp=timestamp,
            )
        )

    def rm(self, path: str, *, allow_not_found: bool = False, allow_wildcard: bool = False) -> FileActions:
        return self._then(Rm(abs_path(path), allow_not_found, allow_wildcard))


# Chain starters: `mkdir(...).copy(...)`.
mkdir = FileActions().mkdir
mkfile = FileActions().mkfile
copy = FileActions().copy
rm = FileActions().rm


def _user_pb(ref: Optional[UserRef], base: int) -> Optional[ops_pb2.UserOpt]:
    if ref is None:
        return None
    if isinstance(ref, int):
        return ops_pb2.UserOpt(byID=ref)
    return ops_pb2.UserOpt(byName=ops_pb2.NamedUserOpt(name=ref, input=base))


def _chown_pb(owner: Optional[Owner], base: int) -> Optional[ops_pb2.ChownOpt]:
    if owner is None:
        return None
    chown = ops_pb2.ChownOpt()
    user = _user_pb(owner.user, base)
    group = _user_pb(owner.group, base)
    if user is not None:
        chown.user.CopyFrom(user)
    if group is not None:
        chown.group.CopyFrom(group)
    return chown


@dataclass(frozen=True)
class FileOp(Vertex):
    base: State
    actions: Tuple[Action, ...]
    name: Optional[str] = None

    def inputs(self) -> Tuple[Output, ...]:
        # Not deduplicated here: marshal tracks vertices by identity and the op dedupes inputs by digest.
        candidates = [self.base.output] + [a.source.output for a in self.actions if isinstance(a, Copy)]
        return tuple(out for out in candidates if out is not None)

    def to_spec(self, resolve: InputResolver, platform: Optional[Platform]) -> OpSpec:
        op = new_op(None)  # a file op is not platform-specific
        keys: List[Tuple[str, int]] = []

        def add(out: Optional[Output]) -> int:
            if out is None:
                return -1
            inp = resolve(out)
            key = (inp.digest, inp.index)
            if key not in keys:
                keys.append(key)
                op.inputs.add().CopyFrom(inp)
            return keys.index(key)

        base = add(self.base.output)
        secondary = [add(a.source.output) if isinstance(a, Copy) else -1 for a in self.actions]
        caps = {"file.base"}
        for i, action in enumerate(self.actions):
            pa = op.file.actions.add()
            pa.input = base if i == 0 else len(keys) + i - 1
            pa.secondaryInput = secondary[i]
            pa.output = 0 if i == len(self.actions) - 1 else -1
            if isinstance(action, Mkdir):
                pa.mkdir.path = action.path
                pa.mkdir.mode = action.mode
                pa.mkdir.makeParents = action.make_parents
                chown = _chown_pb(action.owner, base)
                if chown is not None:
                    pa.mkdir.owner.CopyFrom(chown)
                pa.mkdir.timestamp = _timestamp_ns(action.timestamp)
            elif isinstance(action, Mkfile):
                pa.mkfile.path = action.path
                pa.mkfile.mode = action.mode
                pa.mkfile.data = action.data
                chown = _chown_pb(action.owner, base)
                if chown is not None:
                    pa.mkfile.owner.CopyFrom(chown)
                pa.mkfile.timestamp = _timestamp_ns(action.timestamp)
            elif isinstance(action, Copy):
                c = pa.copy
                c.src = action.src
                c.dest = action.dest
                chown = _chown_pb(action.owner, base)
                if chown is not None:
                    c.owner.CopyFrom(chown)
                c.mode = -1 if action.mode is None else action.mode
                c.followSymlink = action.follow_symlinks
                c.dirCopyContents = action.copy_dir_contents
                c.createDestPath = action.create_dest_path
                c.allowWildcard = action.allow_wildcard
                c.allowEmptyWildcard = action.allow_empty_wildcard
                c.timestamp = _timestamp_ns(action.timestamp)
                c.include_patterns.extend(action.include)
                c.exclude_patterns.extend(action.exclude)
                if action.include or action.exclude:
                    caps.add("file.copy.includeexcludepatterns")
            else:
                pa.rm.path = action.path
                pa.rm.allowNotFound = action.allow_not_found
                pa.rm.allowWildcard = action.allow_wildcard
                if action.allow_wildcard:
                    caps.add("file.rm.wildcard")
        return OpSpec(op=op, caps=tuple(sorted(caps)), description=description(self.name))


def file(state: State, actions: FileActions, custom_name: Optional[str] = None) -> State:
    """Apply a chain of file actions to `state`, as one FileOp."""
    if not isinstance(actions, FileActions) or not actions.actions:
        raise LLBError("a file op needs at least one action (mkdir/mkfile/copy/rm)")
    return State(Output(FileOp(base=state, actions=actions.actions, name=custom_name)))
