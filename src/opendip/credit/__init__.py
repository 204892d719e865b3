"""Credit rating of hospitals and doctors (信用评价, issue 22 item 4)."""

from __future__ import annotations

from pathlib import Path


def credit_dirs(run_dir: Path) -> tuple[Path, ...]:
    """Where a settlement run's credit grades input lies (the demo's DATA/credit/<year>/, the
    platform's run directory): searched for a run's recorded `credit` input."""
    out: list[Path] = [run_dir, run_dir.parent]
    for base in (run_dir.parent / "credit", run_dir.parent.parent / "credit"):
        if base.is_dir():
            out += sorted(p for p in base.iterdir() if p.is_dir())
    return tuple(out)


__all__ = ["credit_dirs"]
