"""melange on BuildKit: the core library (no Pants imports below this package, except in melange_bk.pants)."""

__version__ = "0.1.0"

# Absolute package path: a process that changes directory later (tests, tools) can still import sub-modules
# lazily even when the package was found through a relative sys.path entry.
__path__ = [__import__("os").path.abspath(p) for p in __path__]  # noqa: F821
