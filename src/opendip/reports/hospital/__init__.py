"""院端分析: a hospital's profit and loss under DIP, from a settlement run."""

from opendip.reports.hospital.build import (
    DEFAULT_NEAR_BAND,
    DEFAULT_NEAR_LIMIT,
    DEFAULT_TOP_N,
    build_hospital_report,
    parse_near_band,
)
from opendip.reports.hospital.source import HospitalAnalysisError, UnknownHospitalError

__all__ = [
    "DEFAULT_NEAR_BAND",
    "DEFAULT_NEAR_LIMIT",
    "DEFAULT_TOP_N",
    "HospitalAnalysisError",
    "UnknownHospitalError",
    "build_hospital_report",
    "parse_near_band",
]
