"""The report stage: a self-contained, offline HTML report of a store in Simplified Chinese or English."""

from zhizao.report.html import ReportWarning, render_report

__all__ = ["ReportWarning", "render_report"]
