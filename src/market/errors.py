"""The error a market raises for bad input (a config value, a file, a venue's answer)."""
from __future__ import annotations


class MarketInputError(ValueError):
    """Bad market input, found while the market is built: a user error (exit code 2, nothing run).

    Any other exception from a market's code is a bug: the run reports it as a crash (exit 4).
    """
