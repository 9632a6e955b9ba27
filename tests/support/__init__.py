"""Helpers the suites share (tests/ is on sys.path): mpirun (mpiexec with a timeout), count_alloc.c (a malloc
counter preloaded by tests/library/test_reliability.py)."""
