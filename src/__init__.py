"""Reproducible paper-trading runs of a cross-exchange crypto arbitrage simulator.

Run from the repository root: `python -m src.run stage=d92-5`.
"""
PACKAGE = __name__  # "src": the project package, as the guard, the purge and the code inventory name it
