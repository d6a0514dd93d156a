"""Benchmarks behind ``make bench``: stage timings, CPU-seconds and peak memory at 100k and 1M persons,
tag and audience operations, connected components and quality gates."""
