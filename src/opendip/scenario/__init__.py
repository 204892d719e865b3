"""Scenarios (方案测算): a settled year re-run under policy and directory variants."""

from opendip.scenario.variant import Variant, VariantError

__all__ = ["Variant", "VariantError"]
