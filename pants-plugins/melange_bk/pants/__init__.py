"""The thin Pants layer: targets and rules that call into the core library. Only this package imports Pants."""
