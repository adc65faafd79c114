"""Filling an order by walking the simulated book depth."""
from __future__ import annotations

from src.market.tape import BookShape


def growth_pow(book: BookShape) -> float:
    """growth**levels by repeated multiplication: `**` on floats is libm's pow, whose
    last bit may differ between CPUs (glibc picks an FMA variant where the CPU has one)."""
    p = 1.0
    for _ in range(book.levels):
        p *= book.growth
    return p


def depth(top_size: float, book: BookShape) -> float:
    """Total size on one side of the book, in coins."""
    if book.growth == 1.0:
        return top_size * book.levels
    return top_size * (growth_pow(book) - 1.0) / (book.growth - 1.0)


def walk(top_price: float, top_size: float, qty: float, side: int, book: BookShape) -> float:
    """Volume-weighted price of taking `qty` coins; side +1 buys (asks), -1 sells (bids).

    Level i is priced top*(1 + side*i*step_bps/1e4). Size beyond the last level fills one
    further step out (the book is assumed to refill there) so an exit always completes.
    """
    remaining = qty
    cost = 0.0
    size = top_size
    for i in range(book.levels):
        take = size if size < remaining else remaining
        cost += take * top_price * (1.0 + side * i * book.step_bps * 1e-4)
        remaining -= take
        if remaining <= 0.0:
            return cost / qty
        size *= book.growth
    cost += remaining * top_price * (1.0 + side * book.levels * book.step_bps * 1e-4)
    return cost / qty
