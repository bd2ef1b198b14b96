"""Orchestration: a compiled build plan → LLB → one solve on BuildKit → signed APKs (and an index)."""
