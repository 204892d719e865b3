"""病案首页质控 (front-page quality control): rules as data, batch and single case.

Front pages (病案首页, imported by `opendip.ingest.frontpage`) are checked against a rule
file (``data/qc/front-page-rules.yaml``, or a region's own through `qc.front_page_rule_set`):
completeness (`required`), coding consistency with the settlement list of the same case id
(`matches_list`: main diagnosis, main procedure; a finding names both codes) and timeliness
(`within_days`: submitted at most `qc.front_page_submit_days` days after discharge). Every rule
compiles to one Ibis expression over the front pages joined to the lists; `check_front_pages`
runs the same code for a batch or (with `case_id`) one case, so both answers agree. A front
page passes when it has no finding of level error; the pass rate per hospital feeds the
assessment (measure `front_page_qc_pass_rate`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Annotated, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from ibis.backends import BaseBackend
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opendip.contract.columns import Column, TableContract
from opendip.contract.tables import QC_FINDINGS
from opendip.engine import connect, table_from_arrow
from opendip.policy.sections.qc import QcPolicy
from opendip.qc.records import _render, _text

S, D = pa.string(), pa.date32()

#: One front page per case, the fields front-page QC reads (national 首页 items).
FRONT_PAGES = TableContract(
    name="front_pages",
    label="病案首页",
    key=("case_id",),
    columns=(
        Column("case_id", S, "结算清单号"),
        Column("hospital_id", S, "定点医疗机构代码", required=False),
        Column("patient_id", S, "病案号", required=False),
        Column("sex", S, "性别", required=False),
        Column("birth_date", D, "出生日期", required=False),
        Column("admit_date", D, "入院日期", required=False),
        Column("discharge_date", D, "出院日期", required=False),
        Column("department", S, "出院科别", required=False),
        Column("main_diagnosis", S, "主要诊断编码", required=False),
        Column("main_procedure", S, "主要手术及操作编码", required=False),
        Column("submitted_date", D, "首页上传日期", required=False),
    ),
)
#: Per front page: passed = no finding of level error.
FRONT_PAGE_STATUS = TableContract(
    name="front_page_status",
    label="病案首页质控结果",
    key=("case_id",),
    columns=(
        Column("case_id", S, "结算清单号"),
        Column("hospital_id", S, "定点医疗机构代码", required=False),
        Column("passed", pa.bool_(), "首页质控通过"),
        Column("error_count", pa.int64(), "错误数"),
    ),
)
DEFAULT_RULES = Path(__file__).resolve().parent.parent / "data" / "qc" / "front-page-rules.yaml"
#: Settlement-list (CASES) fields a `matches_list` rule may compare with.
LIST_FIELDS = ("main_diagnosis", "main_procedure", "admit_date", "discharge_date", "sex")
#: `qc.` policy keys a `within_days` rule may name.
DAY_PARAMS = ("front_page_submit_days",)


class FrontPageRuleError(ValueError):
    """A rule file that cannot be used (Chinese, naming the rule and the problem)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Required(_Model):
    type: Literal["required"]


class MatchesList(_Model):
    type: Literal["matches_list"]
    list_field: str

    @model_validator(mode="after")
    def _known(self) -> MatchesList:
        if self.list_field not in LIST_FIELDS:
            raise ValueError(f"list_field 须是 {'、'.join(LIST_FIELDS)} 之一")
        return self


class WithinDays(_Model):
    type: Literal["within_days"]
    from_: str = Field(alias="from")
    param: str

    @model_validator(mode="after")
    def _known(self) -> WithinDays:
        if self.param not in DAY_PARAMS:
            raise ValueError(f"param 须是 qc 政策参数 {'、'.join(DAY_PARAMS)} 之一")
        if self.from_ not in FRONT_PAGES.names:
            raise ValueError(f"from 字段 {self.from_} 不是病案首页字段")
        return self


Check = Annotated[Required | MatchesList | WithinDays, Field(discriminator="type")]


class FrontPageRule(_Model):
    id: str
    name: str
    level: Literal["error", "warning", "info"]
    fields: list[str] = Field(min_length=1)
    message: str
    check: Check

    @model_validator(mode="after")
    def _known_fields(self) -> FrontPageRule:
        unknown = [f for f in self.fields if f not in FRONT_PAGES.names]
        if unknown:
            raise ValueError(f"未知字段 {'、'.join(unknown)}（须是病案首页字段）")
        return self


class FrontPageRuleSet(_Model):
    version: str
    name: str
    description: str = ""
    rules: list[FrontPageRule]


def load_front_page_rules(path: str | Path | None = None) -> FrontPageRuleSet:
    """The rule set ("default" or None: the shipped file); errors name the rule and key."""
    path = DEFAULT_RULES if path in (None, "default") else Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return FrontPageRuleSet.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise FrontPageRuleError(f"{path}：无法读取（{exc}）") from exc
    except ValidationError as exc:
        problems = [f"{'.'.join(str(x) for x in e['loc'])}：{e['msg']}" for e in exc.errors()]
        raise FrontPageRuleError(f"{path}：" + "；".join(problems)) from exc


def rules_for_qc_policy(qc: QcPolicy, base: Path | None = None) -> FrontPageRuleSet:
    """The region's front-page rules (`qc.front_page_rule_set`, relative to the policy file's
    directory `base`), without the rules `qc.disabled_rules` switches off."""
    name = qc.front_page_rule_set
    path = None if name == "default" else (base / name if base else Path(name))
    rules = load_front_page_rules(path)
    off = set(qc.disabled_rules)
    return rules.model_copy(update={"rules": [r for r in rules.rules if r.id not in off]})


# --- compiling --------------------------------------------------------------------------------


def _present(value: ir.Value) -> ir.BooleanValue:
    if value.type().is_string():
        return value.notnull() & (value.strip() != "")
    return value.notnull()


def _findings(t: ir.Table, rule: FrontPageRule, field: str, qc: QcPolicy) -> ir.Table:
    """Findings of one rule on one field over `t` (front pages left-joined to lists)."""
    c = rule.check
    value: ir.Value = t[field]
    parts: dict[str, ir.Value] = {
        "value": value,
        "label": ibis.literal(FRONT_PAGES.column(field).label),
    }
    if isinstance(c, Required):
        bad = ~_present(value)
    elif isinstance(c, MatchesList):
        other = t[f"_list_{c.list_field}"]
        a = value.cast("string").strip().nullif("")
        b = other.cast("string").strip().nullif("")
        differ = (a != b) | (a.isnull() & b.notnull()) | (a.notnull() & b.isnull())
        bad = t._has_list & differ
        parts["list_value"] = other
    else:  # WithinDays
        limit = {"front_page_submit_days": qc.front_page_submit_days}[c.param]
        days = value.delta(t[c.from_], unit="day")
        bad = days > limit
        parts.update(days=days, limit=ibis.literal(limit))
    hit = t.mutate(_bad=bad.fill_null(False), _msg=_render(rule.message, parts), _v=value)
    hit = hit.filter(hit._bad)
    out = hit.select(
        case_id=hit.case_id,
        hospital_id=hit._hospital,
        rule_id=ibis.literal(rule.id),
        level=ibis.literal(rule.level),
        field=ibis.literal(f"front_pages.{field}"),
        value=_text(hit._v),
        message=hit._msg,
    )
    return out.cast({name: "string" for name in out.columns})


def front_page_findings(
    front_pages: ir.Table, lists: ir.Table, rules: FrontPageRuleSet, qc: QcPolicy
) -> ir.Table:
    """Findings (QC_FINDINGS schema, field = 'front_pages.<field>') of the front pages; `lists`
    holds the settlement lists (case_id and the LIST_FIELDS present)."""
    cols = [f for f in LIST_FIELDS if f in lists.columns]
    right = lists.select(
        _list_case=lists.case_id,
        _list_hospital=lists.hospital_id if "hospital_id" in lists.columns else ibis.null("string"),
        **{f"_list_{f}": lists[f] for f in cols},
    )
    right = right.mutate(
        **{
            f"_list_{f}": ibis.null(FRONT_PAGES.column(f).type)
            for f in LIST_FIELDS
            if f not in cols
        }
    )
    t = front_pages.left_join(right, front_pages.case_id == right._list_case)
    t = t.mutate(
        _has_list=t._list_case.notnull(),
        _hospital=t.hospital_id.coalesce(t._list_hospital),
    )
    parts = [_findings(t, rule, f, qc) for rule in rules.rules for f in rule.fields]
    if not parts:
        return t.select(**{n: ibis.null("string") for n in QC_FINDINGS.names}).limit(0)
    union = reduce(lambda a, b: a.union(b), parts)
    return union.order_by(["case_id", "rule_id", "field", "message"])


def front_page_status(front_pages: ir.Table, findings: ir.Table) -> ir.Table:
    """Per front page: error count and passed (no finding of level error)."""
    errors = findings.filter(findings.level == "error")
    per = errors.group_by(_case=errors.case_id).aggregate(_n=errors.count())
    t = front_pages.left_join(per, front_pages.case_id == per._case)
    n = t._n.fill_null(0).cast("int64")
    return t.select(
        case_id=t.case_id,
        hospital_id=t.hospital_id,
        passed=n == 0,
        error_count=n,
    ).order_by("case_id")


def front_page_pass_rate(status: ir.Table) -> ir.Table:
    """Per hospital: front pages checked and passed (pass rate = passed ÷ checked)."""
    s = status.mutate(_p=status.passed.cast("int64"))
    agg = s.group_by("hospital_id").aggregate(checked=s.count(), passed=s._p.sum())
    return agg.order_by("hospital_id")


@dataclass
class FrontPageQcResult:
    findings: pa.Table  # QC_FINDINGS
    status: pa.Table  # FRONT_PAGE_STATUS
    by_hospital: pa.Table  # hospital_id, checked, passed


def run_front_page_qc(
    con: BaseBackend,
    front_pages: pa.Table,
    lists: pa.Table,
    qc: QcPolicy,
    rules: FrontPageRuleSet | None = None,
) -> FrontPageQcResult:
    """Batch front-page QC on one backend: findings, per-page status, per-hospital counts."""
    rules = rules if rules is not None else rules_for_qc_policy(qc)
    fp = table_from_arrow(con, FRONT_PAGES.conform(front_pages), "qc_front_pages")
    keep = [c for c in ("case_id", "hospital_id", *LIST_FIELDS) if c in lists.column_names]
    li = table_from_arrow(con, lists.select(keep), "qc_front_page_lists")
    findings = front_page_findings(fp, li, rules, qc)
    status = front_page_status(fp, findings)
    return FrontPageQcResult(
        findings=QC_FINDINGS.conform(findings.to_pyarrow()),
        status=FRONT_PAGE_STATUS.conform(status.to_pyarrow()),
        by_hospital=front_page_pass_rate(status).to_pyarrow(),
    )


def check_front_pages(
    front_pages: pa.Table,
    lists: pa.Table,
    qc: QcPolicy,
    rules: FrontPageRuleSet | None = None,
    case_id: str | None = None,
) -> FrontPageQcResult:
    """A whole import or (with `case_id`) one case: the same rules compiled the same way, so
    one case's answer equals its rows of the batch answer."""
    if case_id is not None:
        front_pages = front_pages.filter(pc.equal(front_pages["case_id"], case_id))
        lists = lists.filter(pc.equal(lists["case_id"], case_id))
    return run_front_page_qc(connect(), front_pages, lists, qc, rules)


def front_pages_from_conversion(conversion: object, submitted: dt.date) -> pa.Table:
    """The FRONT_PAGES table of a converted front-page export (`convert_front_pages`),
    uploaded on `submitted` (the export carries no upload date)."""
    from opendip.ingest.values import parse_date

    records: dict[str, pa.Table] = conversion.records  # type: ignore[attr-defined]
    head = records["settlement_lists"]
    n = head.num_rows

    def text(name: str) -> pa.Array:
        if name not in head.column_names:
            return pa.nulls(n, S)
        return head[name].combine_chunks().cast(S)

    def date(name: str) -> pa.Array:
        values = pc.utf8_slice_codeunits(text(name), 0, 10)
        return parse_date(values)[0]

    def first_code(table: pa.Table, flag: str, want: str, code: str) -> pa.Array:
        if flag not in table.column_names or table.num_rows == 0:
            return pa.nulls(n, S)
        rows = table.filter(pc.equal(table[flag], want))
        ids = rows["SETL_ID"].combine_chunks()
        # first row per case: index_in finds the first occurrence
        idx = pc.index_in(text("SETL_ID"), value_set=ids)
        return pc.take(rows[code].combine_chunks().cast(S), idx)

    return FRONT_PAGES.conform(
        pa.table(
            {
                "case_id": text("SETL_ID"),
                "hospital_id": text("FIXMEDINS_CODE"),
                "patient_id": text("MEDCASNO"),
                "sex": text("GEND"),
                "birth_date": date("BRDY"),
                "admit_date": date("ADM_TIME"),
                "discharge_date": date("DSCG_TIME"),
                "department": text("DSCG_CATY"),
                "main_diagnosis": first_code(
                    records["diagnoses"], "MAINDIAG_FLAG", "1", "DIAG_CODE"
                ),
                "main_procedure": first_code(
                    records["procedures"], "OPRN_OPRT_TYPE", "1", "OPRN_OPRT_CODE"
                ),
                "submitted_date": pa.array([submitted] * n, D),
            }
        )
    )
