"""Synthetic region generator: the project's test bed (labelled anomalies included)."""

from opendip.synth.anomalies import BEHAVIOUR_LABELS, QC_LABELS, Rates
from opendip.synth.region import generate_region

__all__ = ["BEHAVIOUR_LABELS", "QC_LABELS", "Rates", "generate_region"]
