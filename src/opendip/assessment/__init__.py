"""Annual assessment (年度考核): the policy's scorecard computed per hospital."""

from pathlib import Path

from opendip.assessment.engine import AssessmentError, AssessmentInputs, assess


def assessment_dirs(run_dir: Path) -> tuple[Path, ...]:
    """Where `opendip assess --out assessment/` output lies beside a settlement run (the
    demo's and the platform's layout): searched for a run's recorded assessment input."""
    return tuple(d / "assessment" for d in (run_dir, run_dir.parent))


__all__ = ["AssessmentError", "AssessmentInputs", "assess", "assessment_dirs"]
