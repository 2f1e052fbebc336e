"""The budget model: TiCDC's per-dispatcher and per-changefeed (global) in-flight byte budget.

Pure logic: no files, no printing, no clocks. Driven by calls, it reports every decision it makes
as a :class:`~budget.decisions.Decision` to whoever listens.
"""

from budget.config import BudgetConfig, ScopeLimits, format_bytes, parse_size
from budget.decisions import Decision
from budget.engine import DuplicateDml, Engine

__all__ = ["BudgetConfig", "ScopeLimits", "Decision", "Engine", "DuplicateDml", "format_bytes",
           "parse_size"]
