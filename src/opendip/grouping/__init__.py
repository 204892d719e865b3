"""Grouping cases into the directory (入组): batch and single case, with explanations."""

from opendip.grouping.batch import group_cases
from opendip.grouping.single import GroupingIndex, GroupResult, group_case

__all__ = ["GroupResult", "GroupingIndex", "group_case", "group_cases"]
