"""Report parameters (报表口径) the regions choose (issue 22 item 7)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from pydantic import Field, model_validator

from opendip.policy.sections.base import NonNegative, Section, key_error


class ReportingPolicy(Section):
    #: 分值段: lower edges (settled score, points) of the bands the regional report counts DIP
    #: cases in; a band is [edge, next edge), the last has no upper end. Strictly increasing.
    score_bands: list[NonNegative] = Field(
        default=[Decimal(0), Decimal(100), Decimal(500), Decimal(1000), Decimal(2000)],
        min_length=1,
    )

    @model_validator(mode="after")
    def _increasing(self) -> ReportingPolicy:
        edges = self.score_bands
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise key_error(
                "score_bands",
                "分值段下限必须严格递增",
                "score band edges must be strictly increasing",
            )
        return self
