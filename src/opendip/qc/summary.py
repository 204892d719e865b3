"""QC summaries (overall, per hospital, per rule) and measurement against injected labels."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.qc.rules import LEVEL_LABELS, RuleSet

#: The synthetic region's QC label vocabulary; a rule's `category` names the label it finds.
QC_LABEL_PREFIX = "qc_"


def rules_table(rules: RuleSet) -> pa.Table:
    """Rule metadata as a table (id, name, level, category, order)."""
    return pa.table(
        {
            "rule_id": [r.id for r in rules.rules],
            "rule_name": [r.name for r in rules.rules],
            "level": [r.level for r in rules.rules],
            "level_label": [LEVEL_LABELS[r.level] for r in rules.rules],
            "category": pa.array([r.category for r in rules.rules], pa.string()),
            "rule_order": pa.array(range(len(rules.rules)), pa.int32()),
        }
    )


def _rate(numerator: ir.IntegerValue, denominator: ir.IntegerValue) -> ir.FloatingValue:
    return ibis.ifelse(denominator > 0, numerator.cast("float64") / denominator, None)


def by_hospital(case_status: ir.Table) -> ir.Table:
    """Per hospital: cases checked, passed, 合格率, blocking cases, findings by level."""
    s = case_status
    out = s.group_by("hospital_id").aggregate(
        cases=s.count(),
        passed=s.passed.cast("int64").sum(),
        blocking=s.blocking.cast("int64").sum(),
        errors=s.error_count.sum(),
        warnings=s.warning_count.sum(),
        infos=s.info_count.sum(),
    )
    return out.mutate(pass_rate=_rate(out.passed, out.cases)).order_by("hospital_id")


def by_rule(findings: ir.Table, case_status: ir.Table, rules: RuleSet) -> ir.Table:
    """Per rule (every active rule, also those that found nothing): findings, cases flagged,
    share of checked cases."""
    f = findings
    counts = f.group_by("rule_id").aggregate(findings=f.count(), cases=f.case_id.nunique())
    meta = ibis.memtable(rules_table(rules)).cross_join(
        case_status.aggregate(_total=case_status.count())
    )
    j = meta.left_join(counts, meta.rule_id == counts.rule_id)
    cases = j.cases.fill_null(0)
    out = j.select(
        rule_id=j.rule_id,
        rule_name=j.rule_name,
        level=j.level,
        level_label=j.level_label,
        category=j.category,
        findings=j.findings.fill_null(0),
        cases=cases,
        case_share=_rate(cases, j._total),
        rule_order=j.rule_order,
    )
    return out.order_by("rule_order").drop("rule_order")


def overall(case_status: pa.Table, findings: pa.Table) -> dict[str, Any]:
    """Headline numbers (small: computed from the already-materialised tables)."""
    import pyarrow.compute as pc

    cases = case_status.num_rows
    passed = int(pc.sum(case_status["passed"]).as_py() or 0)
    blocking = int(pc.sum(case_status["blocking"]).as_py() or 0)
    levels = {lv: 0 for lv in LEVEL_LABELS}
    if findings.num_rows:
        for item in pc.value_counts(findings["level"]).to_pylist():
            levels[item["values"]] = int(item["counts"])
    return {
        "cases": cases,
        "passed": passed,
        "pass_rate": passed / cases if cases else None,
        "blocking": blocking,
        "findings": findings.num_rows,
        "errors": levels["error"],
        "warnings": levels["warning"],
        "infos": levels["info"],
    }


def evaluate_labels(
    findings: ir.Table, labels: ir.Table, case_ids: ir.Table, rules: RuleSet
) -> tuple[ir.Table, ir.Table]:
    """Recall and precision per QC label, and the clean cases flagged with an error.

    A labelled case is found when an error-level finding of a rule whose `category` is the
    label (without `qc_`) names it. Precision of a label: flagged cases carrying that label ÷
    cases flagged by its rules. "Clean" = a case id with no QC label at all (behaviour labels
    such as upcoding do not make a settlement list wrong).
    Returns (per_label, clean_cases_with_errors).
    """
    meta = ibis.memtable(rules_table(rules))
    errors = findings.filter(findings.level == "error")
    categorised = errors.join(meta.select("rule_id", "category"), "rule_id")
    flagged = categorised.select(
        "case_id", label=ibis.literal(QC_LABEL_PREFIX).concat(categorised.category)
    ).distinct()
    qc = labels.filter(labels.label.startswith(QC_LABEL_PREFIX)).select("case_id", "label")
    # Labels of other years' files are not this run's cases.
    qc = qc.semi_join(case_ids.select("case_id").distinct(), "case_id")
    injected = qc.distinct()
    hit = injected.join(flagged, ["case_id", "label"]).mutate(_hit=1)
    per_injected = injected.left_join(hit, ["case_id", "label"])
    recall = per_injected.group_by(per_injected.label).aggregate(
        injected=per_injected.count(), found=per_injected._hit.fill_null(0).sum()
    )
    tp = flagged.join(injected, ["case_id", "label"]).mutate(_tp=1)
    per_flag = flagged.left_join(tp, ["case_id", "label"])
    precision = per_flag.group_by(per_flag.label).aggregate(
        flagged=per_flag.count(), true_positives=per_flag._tp.fill_null(0).sum()
    )
    j = recall.outer_join(precision, recall.label == precision.label)
    per_label = j.select(
        label=ibis.coalesce(j.label, j.label_right),
        injected=j.injected.fill_null(0),
        found=j.found.fill_null(0),
        flagged=j.flagged.fill_null(0),
        true_positives=j.true_positives.fill_null(0),
    )
    per_label = per_label.mutate(
        recall=_rate(per_label.found, per_label.injected),
        precision=_rate(per_label.true_positives, per_label.flagged),
    ).order_by("label")
    labelled = qc.select("case_id").distinct()
    clean = case_ids.select("case_id").distinct().anti_join(labelled, "case_id")
    clean_flagged = errors.join(clean, "case_id").select(
        "case_id", "rule_id", "field", "value", "message"
    )
    return per_label, clean_flagged


__all__ = ["by_hospital", "by_rule", "evaluate_labels", "overall", "rules_table"]
