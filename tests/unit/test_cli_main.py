from __future__ import annotations

import pytest

from melange_bk.cli.main import main
from melange_bk.errors import ConfigError, MelangeError


def test_error_renders_location() -> None:
    assert (
        str(ConfigError("unknown pipeline", path="melange.yaml", line=12))
        == "melange.yaml:12: unknown pipeline"
    )
    assert str(ConfigError("bad", path="a.yaml", line=3, col=7)) == "a.yaml:3:7: bad"
    assert str(MelangeError("plain")) == "plain"
    assert ConfigError("x").exit_code == 2


def test_help_lists_only_available_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "melange-bk" in capsys.readouterr().out


def test_no_command_is_usage_error() -> None:
    assert main([]) == 2
