"""Pipeline definitions for `uses:`: the user's `--pipeline-dir`s first (in order), then the built-ins shipped in
`melange_bk/config/pipelines/` (read through importlib.resources, so they work from a zip/PEX too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Set, Tuple

try:
    from importlib.resources import files as _resource_files
except ImportError:  # pragma: no cover - Python < 3.9
    _resource_files = None  # type: ignore[assignment]

from melange_bk.config import limits
from melange_bk.config.model import Step
from melange_bk.config.parse import decode_step_fields
from melange_bk.config.yamlsrc import Src, compose, one_line, read_text
from melange_bk.errors import ConfigError


@dataclass(frozen=True)
class PipelineDef:
    uses: str
    display: str  # for messages: "built-in fetch" or the file as found through --pipeline-dir
    builtin: bool
    step: Step  # name, inputs, needs, runs, pipeline, if, working-directory, environment of the definition


_file_cache: Dict[Tuple[str, int, int], PipelineDef] = {}
_builtin_cache: Dict[str, Optional[PipelineDef]] = {}


def _decode(uses: str, display: str, text: str, builtin: bool) -> PipelineDef:
    src = Src(display)
    root = compose(display, text)
    step = decode_step_fields(src, root, "pipeline definition")
    return PipelineDef(uses=uses, display=display, builtin=builtin, step=step)


def _validate_uses(uses: str) -> bool:
    """A relative name inside the pipeline dirs: no absolute path, no `..`, no backslash, no control character
    (NUL would make the file lookup itself fail)."""
    return (
        bool(uses)
        and not uses.startswith("/")
        and ".." not in uses.split("/")
        and "\\" not in uses
        and not any(ord(c) < 32 or c == "\x7f" for c in uses)
    )


def load_builtin(uses: str) -> Optional[PipelineDef]:
    if uses in _builtin_cache:
        return _builtin_cache[uses]
    result: Optional[PipelineDef] = None
    if _validate_uses(uses):
        parts = uses.split("/")
        parts[-1] += ".yaml"
        if _resource_files is not None:
            res = _resource_files("melange_bk.config").joinpath("pipelines", *parts)
            text = res.read_text(encoding="utf-8") if res.is_file() else None
        else:  # pragma: no cover
            p = os.path.join(os.path.dirname(__file__), "pipelines", *parts)
            text = open(p, encoding="utf-8").read() if os.path.isfile(p) else None
        if text is not None:
            result = _decode(uses, f"built-in pipeline {uses}", text, builtin=True)
    _builtin_cache[uses] = result
    return result


def builtin_names() -> Tuple[str, ...]:
    """Every built-in pipeline name, sorted."""
    root = os.path.join(os.path.dirname(__file__), "pipelines")
    names = []
    for dirpath, _dirs, filenames in os.walk(root):
        for f in filenames:
            if f.endswith(".yaml"):
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                names.append(rel[: -len(".yaml")].replace(os.sep, "/"))
    return tuple(sorted(names))


class Resolver:
    """Resolves `uses:` names; one per compile (or shared across many files with the same pipeline dirs)."""

    def __init__(self, pipeline_dirs: Sequence[str] = ()) -> None:
        self.pipeline_dirs = tuple(pipeline_dirs)
        self._cache: Dict[str, Optional[PipelineDef]] = {}
        self._checked: Set[str] = set()

    def resolve(self, uses: str) -> Optional[PipelineDef]:
        """The definition of `uses` (None when unknown), once its `uses:` graph was checked for cycles and depth."""
        result = self._lookup(uses)
        if result is not None and uses not in self._checked:
            limits.check_uses(uses, result.display, result.step, self._lookup)
            self._checked.add(uses)
        return result

    def _lookup(self, uses: str) -> Optional[PipelineDef]:
        if uses in self._cache:
            return self._cache[uses]
        result = self._resolve(uses)
        self._cache[uses] = result
        return result

    def _resolve(self, uses: str) -> Optional[PipelineDef]:
        if not _validate_uses(uses):
            raise ConfigError(
                one_line(
                    f'invalid pipeline name "{uses}": no absolute paths, ".." or control characters allowed'
                )
            )
        for d in self.pipeline_dirs:
            path = os.path.join(d, *uses.split("/")) + ".yaml"
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
            cached = _file_cache.get(key)
            if cached is None:
                cached = _decode(uses, path, read_text(path, "pipeline definition"), builtin=False)
                _file_cache[key] = cached
            return cached
        return load_builtin(uses)
