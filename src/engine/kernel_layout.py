"""The compiled kernel's array layouts: no numba here (the Python layer and the ahead-of-time
module, aot.py, use them without importing it). kernel.py freezes these ints into its code,
so this file is one of jitcache.KERNEL_SOURCES.
"""
from __future__ import annotations

import numpy as np

from src.engine.records import TRADE_FIELDS

# ints of the session state: trades, entry signals, market updates, ticks, days known, open positions
N_TRADES, SIGNALS, UPDATES, TICKS, N_DAYS, N_OPEN = 0, 1, 2, 3, 4, 5
# params: fees, cost floor, risk, book
USDT_FEE, KRW_FEE, RT_FEE, FLOOR_MULT, NOTIONAL, MAX_OPEN, LOSS_LIMIT, MIN_FILL, LEVELS, STEP, GROWTH, \
    DEPTH_NUM, DEPTH_DEN = range(13)
# per-symbol open position (floats): entry time, spread, legs, fx, target qty
P_T, P_SPREAD, P_QTY, P_USDT, P_KRW, P_SLIP_USDT, P_SLIP_KRW, P_FX, P_TARGET = range(9)

# one trade (records.TRADE_FIELDS): the integer codes first, then the float64 values
TRADE_DT = np.dtype([(f.name, f.stored) for f in TRADE_FIELDS if f.stored not in ("", "f8")]
                    + [(f.name, f.stored) for f in TRADE_FIELDS if f.stored == "f8"])

