"""Settlement errors (Chinese messages naming the parameter, file or field)."""

from __future__ import annotations

from opendip.scoring.errors import InputDataError, MissingParameterError, ScoringError


class SettlementError(ScoringError):
    """Settlement cannot proceed."""


class NoCasesError(SettlementError):
    """A period (month, year, pool) with no DIP cases: nothing to settle, said explicitly."""


__all__ = ["InputDataError", "MissingParameterError", "NoCasesError", "SettlementError"]
