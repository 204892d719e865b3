"""Region-year policy files: dated, validated parameters (docs/policy.md)."""

from pathlib import Path

from opendip.policy.load import PolicyError, PolicyFile, PolicyIssue, load_policy
from opendip.policy.model import Policy

#: Policy files shipped with the package (the repository's `policies/` links here).
SHIPPED_POLICIES = Path(__file__).resolve().parent.parent / "data" / "policies"


def demo_policy_path() -> Path:
    """The demo region's policy file (for the synthetic region)."""
    return SHIPPED_POLICIES / "demo-region.yaml"


__all__ = [
    "SHIPPED_POLICIES",
    "Policy",
    "PolicyError",
    "PolicyFile",
    "PolicyIssue",
    "demo_policy_path",
    "load_policy",
]
