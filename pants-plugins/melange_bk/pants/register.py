"""Pants backend entry point for melange_package targets (filled in by the [pants] issue)."""


def target_types():
    return []


def rules():
    return []
