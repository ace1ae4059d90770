"""Shared fixtures. pytest-trio runs every async test in trio mode (see pyproject)."""
