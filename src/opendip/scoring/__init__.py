"""Scoring (病例分值): deviation class, case score, hospital coefficient, settled score.

Public pair: `score_cases` (batch, Ibis) and `score_case` (one case, pure Python); both give
the same numbers and the same Chinese explanation.
"""

from opendip.scoring.batch import ScoringResult, score_cases
from opendip.scoring.errors import (
    InputDataError,
    MissingParameterError,
    ReviewFileError,
    ScoringError,
)
from opendip.scoring.single import score_case

__all__ = [
    "InputDataError",
    "MissingParameterError",
    "ReviewFileError",
    "ScoringError",
    "ScoringResult",
    "score_case",
    "score_cases",
]
