"""The YAML schema is declared once, on the model's fields: the accepted keys, the readers and the errors follow."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from melange_bk.config import model as m
from melange_bk.config.parse import parse_config
from melange_bk.config.schema import schema
from melange_bk.errors import ConfigError

HEAD = "package:\n  name: hello\n  version: 1.2.3\n  epoch: 0\n"

# Fields that are not YAML keys: lines, and what the decoder sets (the name of an `inputs:` entry is its key).
NOT_KEYS = {
    (m.Step, "line"),
    (m.Step, "runs_line"),
    (m.Package, "line"),
    (m.Test, "line"),
    (m.Subpackage, "line"),
    (m.Subpackage, "range_key"),
    (m.VarTransform, "line"),
    (m.DataRange, "line"),
    (m.Input, "name"),
    (m.Configuration, "path"),
}
MODEL = [
    c
    for c in vars(m).values()
    if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == m.__name__
]


@pytest.mark.parametrize("cls", MODEL, ids=[c.__name__ for c in MODEL])
def test_every_model_field_declares_its_yaml_key(cls: type) -> None:
    # A new melange field is one edit: a field here without `yaml_key(...)` would silently never be read.
    declared = {s.name for s in schema(cls).fields}
    for f in dataclasses.fields(cls):
        assert (
            f.name in declared or (cls, f.name) in NOT_KEYS
        ), f"{cls.__name__}.{f.name} declares no YAML key"


def test_accepted_keys_come_from_the_fields() -> None:
    levels = {level.prefix: level for level in schema(m.Step).levels}
    assert set(levels) == {"", "needs", "assertions"}
    assert levels["needs"].allowed == {"packages"} and levels["assertions"].allowed == {"required-steps"}
    assert {"uses", "with", "runs", "working-directory", "inputs"} <= levels[""].allowed
    env = {level.prefix: level for level in schema(m.Environment).levels}
    assert env["contents"].allowed == {"repositories", "build_repositories", "keyring", "packages"}
    assert env["contents"].ignored == {"runtime_repositories", "baseimage"}


def parse(body: str) -> m.Configuration:
    return parse_config("melange.yaml", HEAD + textwrap.dedent(body))


@pytest.mark.parametrize(
    "body, message",
    [
        ("bogus: 1\n", "melange.yaml:5: top level: unknown field 'bogus'"),
        (
            "pipeline:\n  - runs: x\n    needs:\n      pakages: [a]\n",
            "melange.yaml:8: pipeline[0].needs: unknown field 'pakages'",
        ),
        (
            "environment:\n  contents:\n    packagez: [a]\n",
            "melange.yaml:7: environment.contents: unknown field 'packagez'",
        ),
        (
            "subpackages:\n  - name: x\n    scriptlets:\n      trigger:\n        path: [a]\n",
            "melange.yaml:9: subpackages[0].scriptlets.trigger: unknown field 'path'",
        ),
        (
            "environment:\n  contents:\n    packages: a\n",
            "melange.yaml:7: environment.contents.packages: expected a list",
        ),
        (
            "environment:\n  accounts:\n    users:\n      - username: u\n        uid: x\n",
            "melange.yaml:9: environment.accounts.users[0].uid: expected an integer, not 'x'",
        ),
        (
            "pipeline:\n  - uses: x\n    with: [a]\n",
            "melange.yaml:7: pipeline[0].with: expected a mapping",
        ),
        (
            "subpackages:\n  - name: x\n    options:\n      no-provides: maybe\n",
            "melange.yaml:8: subpackages[0].options.no-provides: expected true or false, not 'maybe'",
        ),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_file_line_and_path(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(body)
    assert str(e.value).startswith(message), str(e.value)


def test_several_keys_read_into_one_field_and_ignored_keys_are_dropped() -> None:
    cfg = parse(
        """
        environment:
          contents:
            repositories: [a]
            build_repositories: [b]
            baseimage: x
        """
    )
    assert cfg.environment.repositories == ("a", "b")


PRIORITIES = """\
package:
  name: hello
  version: 1.2.3
  epoch: 0
  dependencies:
    KEY: ${{vars.major-version}}
vars:
  major-version: "10"
data:
  - name: streams
    items:
      "3.12": "312"
subpackages:
  - range: streams
    name: hello-${{range.key}}
    dependencies:
      KEY: ${{range.value}}
  - name: hello-epoch
    dependencies:
      KEY: ${{package.epoch}}
"""


@pytest.mark.parametrize("key", ["provider-priority", "replaces-priority"])
def test_priorities_are_integers_once_substituted(key: str) -> None:
    # Wolfi writes `provider-priority: ${{vars.major-version}}` (dotnet-10.yaml); melange substitutes vars there.
    cfg = parse_config("melange.yaml", PRIORITIES.replace("KEY", key))
    attr = key.replace("-", "_")
    assert getattr(cfg.package.dependencies, attr) == "10"
    assert [getattr(s.dependencies, attr) for s in cfg.subpackages] == ["312", "0"]


def test_a_priority_that_is_not_an_integer_after_substitution_is_an_error() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(
            "melange.yaml",
            HEAD + "  dependencies:\n    provider-priority: ${{vars.v}}\nvars:\n  v: ten\n",
        )
    assert (
        str(e.value) == "melange.yaml:6: package.dependencies.provider-priority must be an integer, not 'ten'"
    )
