"""Supervision (智能监管): ranked, evidenced leads of DIP gaming and monthly indicators.

Public API: `supervise(inputs, policy)` → `SupervisionResult` (leads + indicators as Arrow),
`SupervisionInputs` (Ibis tables), the `LEADS` / `INDICATORS` contracts and
`evaluate_leads` (precision/recall against synthetic labels). See docs/supervision.md.
"""

from opendip.supervision.errors import SupervisionError, SupervisionInputError
from opendip.supervision.prepare import SupervisionInputs, prepare_stays
from opendip.supervision.run import SupervisionResult, supervise
from opendip.supervision.tables import INDICATORS, LEAD_TYPES, LEADS

__all__ = [
    "INDICATORS",
    "LEADS",
    "LEAD_TYPES",
    "SupervisionError",
    "SupervisionInputError",
    "SupervisionInputs",
    "SupervisionResult",
    "prepare_stays",
    "supervise",
]
