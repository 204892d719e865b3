"""Errors of the report renderers (messages in Chinese, shown to users as they are)."""

from __future__ import annotations


class ReportRenderError(RuntimeError):
    """A report could not be rendered (missing renderer library, bad chart data, …)."""


class ReportFontError(ReportRenderError):
    """No CJK font is installed: charts and PDFs would show empty boxes instead of Chinese."""
