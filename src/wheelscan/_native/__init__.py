"""Compiled Cython modules (built from ext/*.pyx by setup.py)."""
