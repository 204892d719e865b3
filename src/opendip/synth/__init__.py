"""Synthetic region generator: the project's test bed (labelled anomalies included)."""

from opendip.synth.anomalies import BEHAVIOUR_LABELS, QC_LABELS, Rates
from opendip.synth.region import SynthError, generate_region

__all__ = ["BEHAVIOUR_LABELS", "QC_LABELS", "Rates", "SynthError", "generate_region"]
