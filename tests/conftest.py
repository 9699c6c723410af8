"""Shared pytest set-up. Fixtures live in tests/fixtures/, one module per thing they start."""

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.sandbox",
    "tests.fixtures.hpc",
]
