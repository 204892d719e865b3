"""对账 (issue 19 §3): the agency's returned per-case results against OpenDIP's own.

The agency file is read in one of two formats (docs/hospital-api.md):

* ``opendip`` — OpenDIP's own per-case export (the SCORED contract's column names):
  ``case_id, group_code, settled_score, dip_amount_fen[, explanation]``;
* ``agency_cn`` — a settlement export with Chinese headers (the documented mapping):
  ``结算清单号 → case_id, 病种编码 → group_code, 结算分值 → settled_score,
  支付金额（元）→ dip_amount_fen (× 100, exact), 说明 → explanation``.

Rows with a bad case id, score or amount are set aside with a Chinese reason naming the row
and field (nothing is lost: rows read = compared + set aside). The comparison with OpenDIP's
own results (the scored results the region points at, the hospital's cases only) is one
relational full outer join (Ibis), classifying each case: group differs, score differs,
amount differs, missing in OpenDIP, missing in the agency's file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract.ids import id_reasons, normalise_id_array
from opendip.contract.tables import EXPLAIN_FACTS
from opendip.scoring.explain import render as render_explanation

FORMATS = {
    "opendip": "OpenDIP 逐例结果导出格式",
    "agency_cn": "经办机构结算明细（结算清单号、病种编码、结算分值、支付金额（元））",
}
MAPPINGS: dict[str, dict[str, str]] = {
    "opendip": {
        "case_id": "case_id",
        "group_code": "group_code",
        "settled_score": "settled_score",
        "dip_amount_fen": "dip_amount_fen",
        "explanation": "explanation",
    },
    "agency_cn": {
        "结算清单号": "case_id",
        "病种编码": "group_code",
        "结算分值": "settled_score",
        "支付金额（元）": "amount_yuan",
        "说明": "explanation",
    },
}
REQUIRED = ("case_id", "group_code", "settled_score")
KIND_LABELS = {
    "group": "病种不一致",
    "score": "分值不一致",
    "amount": "金额不一致",
    "missing_ours": "经办机构有、本平台无",
    "missing_agency": "本平台有、经办机构无",
}
_NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


class ReconcileError(ValueError):
    """The file cannot be compared (format, missing columns); Chinese."""


@dataclass
class AgencyFile:
    table: pa.Table  # case_id, group_code, settled_score (decimal), amount_fen, explanation
    rows_read: int
    set_aside: list[dict[str, Any]] = field(default_factory=list)


def read_agency_file(data: bytes, filename: str, fmt: str) -> AgencyFile:
    if fmt not in MAPPINGS:
        raise ReconcileError(f"不支持的格式 {fmt}")
    raw = _read_table(data, filename)
    mapping = MAPPINGS[fmt]
    names = [str(n).strip().lstrip("\ufeff") for n in raw.column_names]
    raw = raw.rename_columns(names)
    present = {mapping[n]: n for n in names if n in mapping}
    amount_key = "dip_amount_fen" if fmt == "opendip" else "amount_yuan"
    missing = [
        src for src, dst in mapping.items() if dst in (*REQUIRED, amount_key) and dst not in present
    ]
    if missing:
        raise ReconcileError(f"文件 {filename} 缺少列：" + "、".join(missing))
    n = raw.num_rows

    def col(key: str) -> pa.Array:
        a = raw[present[key]].combine_chunks() if key in present else pa.nulls(n, pa.string())
        return pc.cast(a, pa.string())

    ids = normalise_id_array(col("case_id"), "case_id")
    reasons = id_reasons("case_id")
    score_txt, amount_txt = col("settled_score"), col(amount_key)
    score_ok = pc.fill_null(pc.match_substring_regex(score_txt, _NUMBER), False)
    amount_ok = pc.fill_null(pc.match_substring_regex(amount_txt, _NUMBER), False)
    if fmt == "opendip":
        amount_ok = pc.and_(
            amount_ok,
            pc.fill_null(pc.match_substring_regex(amount_txt, r"^\s*-?[0-9]+\s*$"), False),
        )
    id_missing = pc.is_null(ids.values)
    # A case id listed twice: the first row counts, the later ones are set aside.
    pos = pa.table({"id": ids.values, "row": pa.array(range(n), pa.int64())})
    first = pos.filter(pc.is_valid(pos["id"])).group_by("id").aggregate([("row", "min")])
    dup = pc.invert(pc.is_in(pos["row"], first["row_min"]))
    dup = pc.and_(dup, pc.invert(id_missing))
    bad = pc.or_(pc.or_(pc.or_(id_missing, pc.invert(score_ok)), pc.invert(amount_ok)), dup)
    set_aside = []
    bad_rows = pc.indices_nonzero(bad).to_pylist()
    if bad_rows:  # only the bad rows (few) are described one by one
        header = present  # contract name → the file's column name
        for i in bad_rows:
            why = []
            if ids.control[i].as_py():
                why.append(f"{header['case_id']}：{reasons['control']}")
            elif ids.too_long[i].as_py():
                why.append(f"{header['case_id']}：{reasons['too_long']}")
            elif ids.charset[i].as_py():
                why.append(f"{header['case_id']}：{reasons['charset']}")
            elif id_missing[i].as_py():
                why.append(f"{header['case_id']}：不能为空")
            if dup[i].as_py():
                why.append(f"{header['case_id']}：与前面的行重复（以第一次出现的行为准）")
            if not score_ok[i].as_py():
                why.append(f"{header['settled_score']}：须为数字")
            if not amount_ok[i].as_py():
                why.append(
                    f"{header[amount_key]}：须为{'整数（分）' if fmt == 'opendip' else '数字（元）'}"
                )
            set_aside.append({"row": i + 2, "reason": "；".join(why)})
    keep = pc.invert(bad)
    score = pc.cast(pc.utf8_trim_whitespace(pc.filter(score_txt, keep)), pa.decimal128(18, 4))
    amount_raw = pc.utf8_trim_whitespace(pc.filter(amount_txt, keep))
    if fmt == "opendip":
        amount = pc.cast(amount_raw, pa.int64())
    else:  # yuan → fen, exact (more than 2 decimals: half up, docs/money.md)
        yuan = pc.cast(amount_raw, pa.decimal128(20, 4))
        amount = pc.cast(
            pc.round(pc.multiply(yuan, pa.scalar(Decimal(100), pa.decimal128(5, 0))), 0,
                     round_mode="half_up"),
            pa.int64(),
        )  # fmt: skip
    table = pa.table(
        {
            "case_id": pc.filter(ids.values, keep),
            "group_code": pc.utf8_trim_whitespace(pc.filter(col("group_code"), keep)),
            "settled_score": score,
            "amount_fen": amount,
            "explanation": pc.filter(col("explanation"), keep),
        }
    )
    return AgencyFile(table, n, set_aside)


def _read_table(data: bytes, filename: str) -> pa.Table:
    name = filename.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(data))
        if name.endswith(".xlsx"):
            from openpyxl import load_workbook

            ws = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
            rows = list(ws.iter_rows(values_only=True))
            if not rows:
                raise ReconcileError(f"文件 {filename} 是空表")
            head = [str(h or "").strip() for h in rows[0]]
            cols = {
                h: pa.array([None if r[i] is None else str(r[i]) for r in rows[1:]], pa.string())
                for i, h in enumerate(head)
                if h
            }
            return pa.table(cols)
        if name.endswith(".csv"):
            import pyarrow.csv as pcsv

            for enc in ("utf-8", "gbk"):
                try:
                    text = data.decode(enc)
                except UnicodeDecodeError:
                    continue
                head = pcsv.read_csv(io.BytesIO(text.encode("utf-8")),
                                     read_options=pcsv.ReadOptions(autogenerate_column_names=False))  # fmt: skip
                names = head.column_names
                return pcsv.read_csv(
                    io.BytesIO(text.encode("utf-8")),
                    convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
                )  # fmt: skip
            raise ReconcileError(f"文件 {filename} 不是 UTF-8 或 GBK 编码")
    except ReconcileError:
        raise
    except Exception as exc:
        raise ReconcileError(f"文件 {filename} 无法读取：{exc}") from exc
    raise ReconcileError(f"文件 {filename}：只支持 .csv、.xlsx 或 .parquet")


def our_results(region: Any, hospital_id: str, upload_files: list[str]) -> ibis.Table | None:
    """OpenDIP's per-case results of the hospital (the scored results the region points at)."""
    scored_path = region.results.scored
    cases = region.cases_expr(upload_files)
    if scored_path is None or cases is None:
        return None
    scored = region._view([scored_path])
    own = cases.filter(cases.hospital_id == hospital_id).select("case_id")
    s = scored.semi_join(own, "case_id")
    if "explanation" in s.columns:  # a run written before explanations were kept as facts
        explanation: ir.Value = s.explanation.cast("string")
    else:  # the explanation's facts, rendered for the differing cases shown
        explanation = ibis.struct({c: s[c] for c in EXPLAIN_FACTS if c in s.columns})
    return s.select(
        "case_id",
        "group_code",
        settled_score=s.settled_score.cast("decimal(18, 4)"),
        amount_fen=s.dip_amount_fen.cast("int64"),
        explanation=explanation,
    )


def _our_explanation(value: str | dict[str, Any] | None) -> str:
    if isinstance(value, dict):
        return render_explanation(value)
    return value or ""


def compare(ours: ibis.Table, agency: pa.Table) -> list[dict[str, Any]]:
    """Every differing case (full outer join on case_id), ordered by case id."""
    theirs = ibis.memtable(agency).rename(
        a_case_id="case_id",
        a_group="group_code",
        a_score="settled_score",
        a_amount="amount_fen",
        a_expl="explanation",
    )
    o = ours.rename(
        o_case_id="case_id",
        o_group="group_code",
        o_score="settled_score",
        o_amount="amount_fen",
        o_expl="explanation",
    )
    j = o.outer_join(theirs, o.o_case_id == theirs.a_case_id)
    both = j.o_case_id.notnull() & j.a_case_id.notnull()
    j = j.mutate(
        case_id=ibis.coalesce(j.o_case_id, j.a_case_id),
        missing_ours=j.o_case_id.isnull(),
        missing_agency=j.a_case_id.isnull(),
        d_group=both & (j.o_group.fill_null("") != j.a_group.fill_null("")),
        d_score=both & (j.o_score.fill_null(-1) != j.a_score.fill_null(-1)),
        d_amount=both & (j.o_amount.fill_null(-1) != j.a_amount.fill_null(-1)),
    )
    j = j.filter(j.missing_ours | j.missing_agency | j.d_group | j.d_score | j.d_amount)
    rows = j.order_by("case_id").to_pyarrow().to_pylist()
    out = []
    for r in rows:  # the differing cases only (display rows)
        kinds = [
            k
            for k, flag in (
                ("missing_ours", r["missing_ours"]),
                ("missing_agency", r["missing_agency"]),
                ("group", r["d_group"]),
                ("score", r["d_score"]),
                ("amount", r["d_amount"]),
            )
            if flag
        ]
        out.append(
            {
                "case_id": r["case_id"],
                "kinds": kinds,
                "ours": None
                if r["missing_ours"]
                else {
                    "group_code": r["o_group"],
                    "settled_score": r["o_score"],
                    "amount_fen": r["o_amount"],
                    "explanation": _our_explanation(r["o_expl"]),
                },
                "agency": None
                if r["missing_agency"]
                else {
                    "group_code": r["a_group"],
                    "settled_score": r["a_score"],
                    "amount_fen": r["a_amount"],
                    "explanation": r["a_expl"] or "",
                },
                "amount_diff_fen": (r["a_amount"] - r["o_amount"])
                if r["a_amount"] is not None and r["o_amount"] is not None
                else None,
            }
        )
    return out
