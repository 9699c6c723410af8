"""Benchmarks: `python -m bench [name ...]` runs bench_<name>.py modules (all by default)."""
