"""melange on BuildKit: the core library (no Pants imports below this package, except in melange_bk.pants)."""

__version__ = "0.1.0"
