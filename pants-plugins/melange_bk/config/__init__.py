"""The config layer: melange YAML -> typed model (`parse`) -> validated build plan (`compile`)."""

from melange_bk.config.compile import compile_config, compile_file, compile_text
from melange_bk.config.parse import parse_config
from melange_bk.config.pipelines import Resolver

__all__ = ["Resolver", "compile_config", "compile_file", "compile_text", "parse_config"]
