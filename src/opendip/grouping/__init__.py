"""Grouping cases into the directory (入组): batch and single case, with explanations."""

from opendip.grouping.batch import group_cases

__all__ = ["group_cases"]
