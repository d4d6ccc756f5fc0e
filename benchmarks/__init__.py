"""Missive's benchmark suite: ``python -m benchmarks`` (see ``--help``)."""
