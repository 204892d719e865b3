"""Precision and recall of the leads against injected, labelled behaviours (synthetic data)."""

from __future__ import annotations

import ibis
import pyarrow as pa

from opendip.policy import Policy

#: Lead type → the synthetic label it should find (opendip.synth BEHAVIOUR_LABELS).
TYPE_LABEL = {
    "readmission": "split_admission",
    "upcoding": "upcoding",
    "low_standard_admission": "low_standard_admission",
    "overlong_stay": "overlong_stay",
    "cost_shifting": "cost_shifting",
}
#: Lead types whose leads are single stays or pairs: a lead is right when all its cases
#: carry the label; for hospital-level types when at least half of them do.
CASE_LEVEL = ("readmission", "low_standard_admission", "overlong_stay")

EVALUATION_SCHEMA = pa.schema(
    [
        ("lead_type", pa.string()),
        ("label", pa.string()),
        ("leads", pa.int64()),
        ("lead_precision", pa.float64()),
        ("top_n", pa.int64()),
        ("top_precision", pa.float64()),
        ("case_precision", pa.float64()),
        ("labelled_cases", pa.int64()),
        ("recall", pa.float64()),
    ]
)


def excluded_by_policy(cases: pa.Table, labels: pa.Table, policy: Policy) -> pa.Table:
    """Labelled low-standard admissions whose discharge method the policy never flags
    (deaths, transfers): (case_id, label) rows for `evaluate_leads(ignore_labels=...)`."""
    methods = policy.supervision.low_standard_exclude_discharge_methods
    c = ibis.memtable(cases.select(["case_id", "discharge_method"]))
    lab = ibis.memtable(labels.select(["case_id", "label"]))
    lab = lab.filter(lab.label == "low_standard_admission")
    j = lab.join(c, "case_id")
    return j.filter(j.discharge_method.isin(methods)).select("case_id", "label").to_pyarrow()


def evaluate_leads(
    leads: pa.Table,
    labels: pa.Table,
    current_case_ids: pa.Array | pa.ChunkedArray,
    top_n: int,
    ignore_labels: pa.Table | None = None,
) -> pa.Table:
    """Per lead type: lead precision, precision of the top `top_n` leads (by rank in type),
    precision over the distinct cases listed, and recall over the labelled cases of the
    period under review (`current_case_ids`).

    `ignore_labels` (case_id, label) removes labelled cases that the policy's definition
    excludes on purpose (e.g. deaths labelled as low-standard admissions) from the truth.
    """
    cur = ibis.memtable(pa.table({"cid": pa.chunked_array([current_case_ids]).combine_chunks()}))
    lab = ibis.memtable(labels.select(["case_id", "label"])).distinct()
    if ignore_labels is not None and ignore_labels.num_rows:
        ign = ibis.memtable(ignore_labels.select(["case_id", "label"])).rename(
            i_case="case_id", i_label="label"
        )
        lab = lab.anti_join(ign, (lab.case_id == ign.i_case) & (lab.label == ign.i_label))
    lab = lab.join(cur.distinct(), lab.case_id == cur.cid).select("case_id", "label")
    ld = ibis.memtable(leads.select(["lead_id", "lead_type", "rank_in_type", "case_ids"]))
    mapping = ibis.memtable(
        pa.table({"m_type": list(TYPE_LABEL), "m_label": list(TYPE_LABEL.values())})
    )
    ld = ld.join(mapping, ld.lead_type == mapping.m_type).drop("m_type")
    exploded = ld.select("lead_id", "lead_type", "m_label", case_id=ld.case_ids.unnest())
    hit = exploded.left_join(
        lab, (exploded.case_id == lab.case_id) & (exploded.m_label == lab.label)
    )
    hit = hit.mutate(is_hit=hit.label.notnull().cast("int64"))
    per_lead = hit.group_by(["lead_id", "lead_type"]).aggregate(
        n=hit.count(), hits=hit.is_hit.sum()
    )
    per_lead = per_lead.join(ld.select("lead_id", "rank_in_type"), "lead_id")
    right = ibis.ifelse(
        per_lead.lead_type.isin(CASE_LEVEL),
        per_lead.hits == per_lead.n,
        per_lead.hits * 2 >= per_lead.n,
    ).cast("int64")
    per_lead = per_lead.mutate(right=right)
    by_type = per_lead.group_by("lead_type").aggregate(
        leads=per_lead.count(),
        right=per_lead.right.sum(),
        top=(per_lead.rank_in_type <= top_n).cast("int64").sum(),
        top_right=(per_lead.right * (per_lead.rank_in_type <= top_n).cast("int64")).sum(),
    )
    cases = hit.select("lead_type", "case_id", "is_hit").distinct()
    case_stats = cases.group_by("lead_type").aggregate(
        listed=cases.count(), listed_hits=cases.is_hit.sum()
    )
    truth = lab.group_by("label").aggregate(labelled=lab.count())
    found = hit.filter(hit.is_hit == 1).select(found_label="m_label", f_case=hit.case_id).distinct()
    found = found.group_by("found_label").aggregate(found=found.count())
    rows = []
    bt = {r["lead_type"]: r for r in by_type.to_pyarrow().to_pylist()}
    cs = {r["lead_type"]: r for r in case_stats.to_pyarrow().to_pylist()}
    tr = {r["label"]: r["labelled"] for r in truth.to_pyarrow().to_pylist()}
    fd = {r["found_label"]: r["found"] for r in found.to_pyarrow().to_pylist()}
    for lead_type, label in TYPE_LABEL.items():
        b = bt.get(lead_type, {})
        c = cs.get(lead_type, {})
        n = b.get("leads", 0)
        top = b.get("top", 0)
        labelled = tr.get(label, 0)
        rows.append(
            {
                "lead_type": lead_type,
                "label": label,
                "leads": n,
                "lead_precision": b["right"] / n if n else None,
                "top_n": top,
                "top_precision": b["top_right"] / top if top else None,
                "case_precision": c["listed_hits"] / c["listed"] if c.get("listed") else None,
                "labelled_cases": labelled,
                "recall": fd.get(label, 0) / labelled if labelled else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=EVALUATION_SCHEMA)
