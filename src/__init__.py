"""Reproducible paper-trading runs of a cross-exchange crypto arbitrage simulator.

Run from the repository root: `python -m src.run stage=d92-5`.
"""
