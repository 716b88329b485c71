"""Benchmarks (`make bench`) and the chaos run (`make chaos`): print figures, write JSON to bench/results/."""
