"""Benchmarks (not tests): ``python -m bench`` runs every module of ``bench.__main__.BENCHMARKS``;
each prints its figures."""
