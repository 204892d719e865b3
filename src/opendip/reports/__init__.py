"""Reports (自动化报告, 结算公示, 院端分析): built from a run's tables, rendered to Excel, HTML, PDF."""

from opendip.reports.model import Chart, ColumnSpec, Figure, Report, Section, Series, Table

__all__ = ["Chart", "ColumnSpec", "Figure", "Report", "Section", "Series", "Table"]
