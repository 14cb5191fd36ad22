"""Figures of every stage (matplotlib / seaborn; no jax, no file I/O).

Modules: `attacks`, `transfer`, `features`, `dynamics`. Functions take arrays or
pandas tables and return a matplotlib Figure.
"""
