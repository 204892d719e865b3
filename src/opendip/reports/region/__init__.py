"""Regional reports: the monthly/annual report (自动化报告) and the settlement publication."""

from opendip.reports.region.build import build_report
from opendip.reports.region.facts import Extras
from opendip.reports.region.publication import build_publication

__all__ = ["Extras", "build_publication", "build_report"]
