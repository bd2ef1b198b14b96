"""Shared fixtures for unit tests (none yet)."""
