"""Which engine a run uses (config `engine`: reference, kernel or auto), and loading the kernel early."""
from __future__ import annotations

import logging
import threading
from typing import Any

from src.config.schema import Engine, RootConfig

log = logging.getLogger(__name__)
# engine=auto runs the kernel from this many symbol-ticks up: below it the reference finishes
# before numba and the cached kernel would have loaded (~0.3 s, +~100 MB RSS).
AUTO_KERNEL_MIN_SYMBOL_TICKS = 200_000


def choose_engine(cfg: RootConfig) -> tuple[Engine, bool]:
    """(the engine to run, whether the synthetic market will use its compiled block generator)."""
    symbol_ticks = cfg.stage.n_ticks * len(cfg.universe_specs)
    engine = cfg.engine
    if engine is Engine.auto:
        engine = Engine.kernel if symbol_ticks >= AUTO_KERNEL_MIN_SYMBOL_TICKS else Engine.reference
    return engine, _market_compiled(cfg, symbol_ticks)


def _market_compiled(cfg: Any, symbol_ticks: int) -> bool:
    """Whether the synthetic market will use its compiled block generator (synthetic.py's policy)."""
    from src.config.schema import SyntheticMarketConfig
    from src.market.synthetic import JIT_MIN_SYMBOL_TICKS

    return isinstance(cfg.market, SyntheticMarketConfig) and symbol_ticks >= JIT_MIN_SYMBOL_TICKS


def warm_kernel(market_too: bool = False) -> threading.Thread:
    """Load the compiled kernel (numba, LLVM, the cached code) while this thread records provenance
    and builds the market; a failure there surfaces again, normally, when the engine starts.
    market_too: the synthetic market's compiled generator as well (src/market/synth_jit.py)."""
    def run() -> None:
        try:
            from src.engine.kernel_run import warm_up

            warm_up()
            if market_too:  # the ahead-of-time module holds the market's block too
                from src.engine import aot

                if not aot.engine().aot:
                    from src.market import synth_jit

                    synth_jit.warm_up()
        except Exception:  # noqa: BLE001 - re-raised by the engine's own import/call
            log.debug("kernel warm-up failed", exc_info=True)
    thread = threading.Thread(target=run, name="kernel-warm-up", daemon=True)
    thread.start()
    return thread
