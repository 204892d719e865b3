"""The engine pipeline for a batch of cases, shared by every caller.

`opendip demo` (the bench stages), the CLI (`opendip qc` → `opendip group --qc-status` →
`opendip settle`) and the platform's monthly/annual runs all go through these steps, so a
platform run is the engine run:

1. quality control (`quality_control`): the policy's rule set; cases with an error-level
   finding are blocking;
2. grouping (`group_checked`): blocking cases are not grouped (unmatched, step
   `qc_excluded`), so settlement does not pay them by DIP;
3. settlement (`opendip.settlement.run.run_month` / `run_year`) from the files written here.

Rows quarantined at import never reach step 1: callers pass the accepted cases only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from opendip.codes import CodeTables
from opendip.policy import Policy


@dataclass(frozen=True)
class CheckedGrouping:
    """QC's case status and the grouping of the same cases (GROUPED contract)."""

    case_status: pa.Table
    grouped: pa.Table


def quality_control(
    con: BaseBackend, cases: ir.Table, codes: CodeTables, policy: Policy, policy_source: Path | str
):
    """Step 1: the policy's QC rule set over `cases` (a `QcResult`, findings cached)."""
    from opendip.qc.batch import codes_to_ibis, run_qc
    from opendip.qc.rules import rules_for_policy

    rules = rules_for_policy(policy, policy_source)
    return run_qc(cases, codes_to_ibis(con, codes), rules, policy)


def group_checked(
    con: BaseBackend,
    cases: ir.Table,
    directory: ir.Table,
    codes: CodeTables,
    policy: Policy,
    case_status: ir.Table | None,
) -> pa.Table:
    """Step 2: group `cases`, QC-blocking cases excluded (GROUPED contract, Arrow)."""
    from opendip.contract import GROUPED
    from opendip.grouping.batch import group_cases
    from opendip.grouping.inputs import diagnosis_codes, procedure_types

    grouped = group_cases(
        cases,
        directory,
        procedure_types(con, codes),
        policy,
        case_status,
        diagnosis_codes(con, codes),
    ).to_pyarrow()
    # The batch plan keeps no row order; a stored order makes reruns byte-identical.
    return GROUPED.conform(grouped).sort_by("case_id")


def check_and_group(
    con: BaseBackend,
    cases: ir.Table,
    directory: ir.Table,
    codes: CodeTables,
    policy: Policy,
    policy_source: Path | str,
    qc_out: Path | None = None,
) -> CheckedGrouping:
    """Steps 1 and 2; with `qc_out`, QC's tables are written there (as `opendip qc` does)."""
    from opendip.engine import table_from_arrow

    qc = quality_control(con, cases, codes, policy, policy_source)
    if qc_out is not None:
        from opendip.qc.export import write_outputs

        status = write_outputs(qc, qc_out, excel=False).case_status
    else:
        status = qc.case_status.to_pyarrow()
    status_t = table_from_arrow(con, status, "pipeline_case_status")
    return CheckedGrouping(status, group_checked(con, cases, directory, codes, policy, status_t))


__all__ = ["CheckedGrouping", "check_and_group", "group_checked", "quality_control"]
