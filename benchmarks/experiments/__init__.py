"""Experiments kept for their record (docs/toy_world_experiments.md): code that was tried and not shipped,
or that only a benchmark uses. Not part of the library: the benchmarks import it as ``experiments.<module>``
(``benchmarks/`` is on the path when a benchmark runs), the tests through ``tests/test_experiments.py``."""
