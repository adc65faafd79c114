"""Figures of the stress suites, printed at the end of the session.

Each suite counts what it tried and what held (`figures.add("bad input", "tried")`),
and `pytest_terminal_summary` prints one line per suite, e.g.
`stress figures | bad input: tried 71, rejected cleanly 71`. Counts only cover the tests
that ran (`-m slow` runs the heavy parts).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator

import pytest


class Figures:
    """Counters by suite, in insertion order."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, suite: str, what: str, n: int = 1) -> None:
        self.counts[suite][what] += n

    def lines(self) -> Iterator[str]:
        for suite, counts in self.counts.items():
            yield f"{suite}: " + ", ".join(f"{k} {v}" for k, v in counts.items())


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = list(FIGURES.lines())
    if lines:
        terminalreporter.section("stress figures")
        for line in lines:
            terminalreporter.write_line(line)
