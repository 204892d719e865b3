"""Region-year policy files: dated, validated parameters (docs/policy.md)."""

from opendip.policy.load import PolicyError, PolicyFile, PolicyIssue, load_policy
from opendip.policy.model import Policy

__all__ = ["Policy", "PolicyError", "PolicyFile", "PolicyIssue", "load_policy"]
