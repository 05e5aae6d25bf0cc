"""The benchmarking harness: ``python -m bench --help``."""
