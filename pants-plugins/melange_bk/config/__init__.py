"""The config layer: melange YAML -> typed model (`parse`), substitutions, conditions, pipeline definitions.

Compiling the model into a build plan is the plan layer's job (`melange_bk.plan.compile`).
"""

from melange_bk.config.parse import parse_config
from melange_bk.config.pipelines import Resolver

__all__ = ["Resolver", "parse_config"]
