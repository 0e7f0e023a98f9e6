"""Benchmarks: `python -m bench [name ...]` (figures printed as ratios against raw baselines). Not tests."""
