"""方案测算 and 意见征集 on the platform: a variant built from the form (validated as the
policy is), run in the background by `opendip.scenario.run.run_scenario` on the latest
annual clearing, published to hospitals, commented, answered, and adopted as a new dated
policy version (the old file kept; every step audited)."""

from __future__ import annotations

import datetime as dt
import threading
import traceback
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendip.policy import PolicyError, PolicyFile
from opendip.scenario import Variant, VariantError
from opendip.scenario.variant import dump_policy
from opendip.store import Run, Store
from opendip.store import repositories as repo
from opendip.store.models import Proposal, ProposalComment, User, utcnow

LEVELS = (("tertiary", "三级"), ("secondary", "二级"), ("primary", "一级"), ("unrated", "未定级"))
MAX_COMPARE = 4


class ProposalRefused(ValueError):
    """A proposal action that is not allowed now (Chinese message)."""


def form_fields(policy_path: Path) -> list[dict[str, Any]]:
    """The parameters the form offers, each a policy key with its current value."""
    pol = PolicyFile.read(policy_path).periods()[-1][2]
    fields = [
        {
            "key": f"scoring.hospital_coefficient.levels.{lv}",
            "label": f"{label}医疗机构系数",
            "value": pol.scoring.hospital_coefficient.levels.get(lv),
        }
        for lv, label in LEVELS
        if lv in pol.scoring.hospital_coefficient.levels
    ]
    for i, band in enumerate(pol.scoring.deviation_bands):
        lo = "" if band.score_min is None else f"≥{band.score_min}"
        hi = "" if band.score_max is None else f"<{band.score_max}"
        fields.append(
            {
                "key": f"scoring.deviation_bands[{i}].high_multiple",
                "label": f"高倍率界值（分值{lo}{hi}）",
                "value": band.high_multiple,
            }
        )
    fields.extend(_ffs_band_fields(pol.settlement.ffs_bands))
    fields.append(
        {
            "key": "settlement.reserve_share",
            "label": "区域调剂金比例",
            "value": pol.settlement.reserve_share,
        }
    )
    for pool, b in pol.settlement.budget.items():
        fields.append(
            {
                "key": f"settlement.budget.{pool}.fund_budget_yuan",
                "label": f"{'职工' if pool == 'employee' else '居民'}年度 DIP 预算（元）",
                "value": b.fund_budget_yuan,
            }
        )
    return fields


def _ffs_band_fields(bands: Any) -> list[dict[str, Any]]:
    """The clearing bands' boundaries and shares as form fields. A boundary where two bands
    meet is one field that moves both (bands may not gap or overlap)."""
    from opendip.policy.sections.settlement import FFS_RULE_LABELS

    names = [f"第{i + 1}档（{FFS_RULE_LABELS[b.rule]}）" for i, b in enumerate(bands)]
    fields: list[dict[str, Any]] = []
    for i, band in enumerate(bands):
        for j, other in enumerate(bands):
            if band.ratio_min is not None and other.ratio_max == band.ratio_min:
                fields.append(
                    {
                        "key": f"settlement.ffs_bands[{i}].ratio_min",
                        "also": [f"settlement.ffs_bands[{j}].ratio_max"],
                        "label": f"清算分档界值：{names[i]}下限 = {names[j]}上限",
                        "value": band.ratio_min,
                    }
                )
        for attr, what in (("share", "比例"), ("cap_share", "上限比例")):
            value = getattr(band, attr)
            if value is not None:
                label = "结余留用" if band.rule == "keep_surplus" else "超支分担"
                fields.append(
                    {
                        "key": f"settlement.ffs_bands[{i}].{attr}",
                        "label": f"{names[i]}{label}{what}",
                        "value": value,
                    }
                )
    return fields


def build_variant(
    title: str, description: str, values: dict[str, str], overlay_text: str, base: PolicyFile
) -> str:
    """The variant YAML from the form: changed fields plus an uploaded/typed overlay, checked
    by the policy validator (PolicyError/VariantError name the key path)."""
    title = (title or "").strip()
    if not title:
        raise VariantError("方案名称必填")
    overlay: dict[str, Any] = {}
    if (overlay_text or "").strip():
        from opendip.policy.load import _DecimalLoader

        try:
            tree = yaml.load(overlay_text, Loader=_DecimalLoader)
        except yaml.YAMLError as exc:
            raise VariantError(f"上传的参数不是有效的 YAML：{exc}") from exc
        if isinstance(tree, dict) and "policy" in tree:
            tree = tree["policy"]
        if not isinstance(tree, dict):
            raise VariantError("上传的参数须为 键路径: 值 的映射，或含 policy 的方案文件")
        overlay.update(Variant(name=title, policy=tree).policy)
    current = {f["key"]: f for f in form_fields(Path(base.source))}
    for key, raw in values.items():
        text = (raw or "").strip()
        if not text or key not in current:
            continue
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            label = current[key]["label"]
            raise VariantError(f"{label}：必须是数字（当前填写 {text!r}）") from exc
        if value != current[key]["value"]:
            for path in (key, *current[key].get("also", ())):
                overlay[path] = value
    if not overlay:
        raise VariantError("方案没有改变任何参数：请修改表单中的数值或上传参数")
    text = yaml.dump(
        {"name": title, "description": description or "", "policy": overlay},
        allow_unicode=True,
        sort_keys=False,
        Dumper=_Dumper,
    )
    Variant.parse(text, "方案").apply(base)  # raises PolicyError naming the key path
    return text


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Decimal,
    lambda d, v: d.represent_scalar(
        "tag:yaml.org,2002:float" if "." in format(v, "f") else "tag:yaml.org,2002:int",
        format(v, "f"),
    ),
)


class ScenarioService:
    def __init__(self, store: Store, data_dir: Path, platform_dir: Path, background: bool) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.platform_dir = Path(platform_dir)
        self.background = background
        self._threads: dict[int, threading.Thread] = {}

    def recover(self) -> None:
        with self.store.session() as s:
            s.execute(
                update(Proposal)
                .where(Proposal.status == "running")
                .values(status="failed", error="服务重启，测算中断，请重新发起")
            )

    def base_run(self, s: Session, runs: Any) -> tuple[Run, Path] | None:
        """The latest annual clearing with settlement results (not failed)."""
        stmt = (
            select(Run)
            .where(Run.kind == "annual", Run.status.in_(("succeeded", "approved", "published")))
            .order_by(Run.id.desc())
        )
        for run in s.scalars(stmt):
            d = runs.settlement_dir(run)
            if d is not None:
                return run, d
        return None

    def start(self, s: Session, user: User, runs: Any, title: str, description: str,
              values: dict[str, str], overlay: str) -> Proposal:  # fmt: skip
        found = self.base_run(s, runs)
        if found is None:
            raise ProposalRefused("还没有可用的年终清算运行：请先在结算管理中完成一次年终清算")
        run, settlement = found
        from opendip.reports.source import resolve_run

        policy = resolve_run(settlement, search_dirs=(self.data_dir,)).policy
        text = build_variant(title, description, values, overlay, policy)
        p = Proposal(
            title=title.strip(),
            description=description or "",
            variant_yaml=text,
            base_run_id=run.id,
            status="running",
            progress="排队中",
            created_by=user.id,
        )
        s.add(p)
        s.flush()
        p.result_dir = str(self.platform_dir / "scenarios" / str(p.id))
        repo.audit(s, user, "proposal.create", "proposal", p.id, {"base_run": run.id})
        s.commit()
        args = (p.id, settlement)
        if self.background:
            t = threading.Thread(target=self.execute, args=args, daemon=True)
            self._threads[p.id] = t
            t.start()
        else:
            self.execute(*args)
        return p

    def wait(self, proposal_id: int, timeout: float = 300) -> None:
        t = self._threads.get(proposal_id)
        if t is not None:
            t.join(timeout)

    def _set(self, proposal_id: int, **values: Any) -> None:
        with self.store.session() as s:
            s.execute(update(Proposal).where(Proposal.id == proposal_id).values(**values))

    def execute(self, proposal_id: int, settlement: Path) -> None:
        from opendip.scenario.run import run_scenario

        with self.store.session() as s:
            p = s.get(Proposal, proposal_id)
            text, out = p.variant_yaml, Path(p.result_dir)
        steps = iter(("基准重算", "方案测算", "对比汇总"))
        try:
            variant = Variant.parse(text, "方案")
            run_scenario(
                settlement,
                [variant],
                out,
                search_dirs=(self.data_dir,),
                on_step=lambda _label: self._set(proposal_id, progress=next(steps, "对比汇总")),
            )
        except (VariantError, PolicyError, ValueError, OSError) as exc:
            self._set(proposal_id, status="failed", error=str(exc), progress="失败")
            return
        except Exception as exc:  # keep the trace for the agency
            self._set(
                proposal_id,
                status="failed",
                error=f"测算出错：{exc}\n{traceback.format_exc(limit=5)}",
                progress="失败",
            )
            return
        self._set(proposal_id, status="ready", progress="完成")


# -- reading results ----------------------------------------------------------------------


def summary_rows(p: Proposal) -> list[dict[str, Any]]:
    path = Path(p.result_dir) / "summary.parquet"
    if p.status in ("running", "failed") or not path.is_file():
        return []
    return pq.read_table(path).to_pylist()


def hospital_rows(p: Proposal, hospital_id: str | None = None) -> list[dict[str, Any]]:
    path = Path(p.result_dir) / "hospitals.parquet"
    if p.status in ("running", "failed") or not path.is_file():
        return []
    rows = [r for r in pq.read_table(path).to_pylist() if r["variant"] != "base"]
    if hospital_id is not None:
        rows = [r for r in rows if r["hospital_id"] == hospital_id]
    return sorted(rows, key=lambda r: (r["clearing_change_fen"], r["hospital_id"], r["pool"]))


# -- workflow -----------------------------------------------------------------------------


def publish(s: Session, user: User, p: Proposal) -> None:
    if p.status != "ready":
        raise ProposalRefused(f"只有测算完成的方案可以发布征求意见（当前：{p.status_label}）")
    p.status, p.published_at = "published", utcnow()
    p.version += 1
    repo.audit(s, user, "proposal.publish", "proposal", p.id)
    s.commit()


def comment(s: Session, user: User, p: Proposal, body: str) -> ProposalComment:
    body = (body or "").strip()
    if p.status != "published":
        raise ProposalRefused("该方案不在意见征集期内，不能提交意见")
    if not body:
        raise ProposalRefused("意见内容不能为空")
    if not user.hospital_id:
        raise ProposalRefused("只有医疗机构用户可以提交意见")
    c = ProposalComment(
        proposal_id=p.id, hospital_id=user.hospital_id, author_id=user.id, body=body
    )
    s.add(c)
    s.flush()
    repo.audit(s, user, "proposal.comment", "proposal", p.id, {"comment": c.id})
    s.commit()
    return c


def reply(s: Session, user: User, p: Proposal, comment_id: int, text: str) -> None:
    text = (text or "").strip()
    c = s.get(ProposalComment, comment_id)
    if c is None or c.proposal_id != p.id:
        raise ProposalRefused("未找到该意见")
    if not text:
        raise ProposalRefused("答复内容不能为空")
    c.reply, c.replied_by, c.replied_at = text, user.id, utcnow()
    repo.audit(s, user, "proposal.reply", "proposal", p.id, {"comment": c.id})
    s.commit()


def adopt(s: Session, user: User, p: Proposal, base_policy: Path, data_dir: Path) -> Path:
    """Write the variant as a new dated policy version beside the region's policy (the old
    file is kept untouched); returns the new file."""
    if p.status not in ("ready", "published"):
        raise ProposalRefused(f"当前状态（{p.status_label}）不能采纳")
    base = PolicyFile.read(base_policy)
    merged = Variant.parse(p.variant_yaml, "方案").apply(base)
    tree = dict(merged.tree)
    today = dt.date.today()
    tree["version"] = f"{tree.get('version', '')}-方案{p.id}"
    tree["documents"] = [
        *list(tree.get("documents") or []),
        f"意见征集方案第 {p.id} 号《{p.title}》{today.isoformat()} 采纳",
    ]
    out_dir = Path(data_dir) / "policies"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{Path(base_policy).stem}-adopted-{today:%Y%m%d}-p{p.id}.yaml"
    text = dump_policy(tree)
    PolicyFile.parse(text, str(path)).periods()  # valid before it is written
    path.write_text(text, encoding="utf-8")
    p.status, p.adopted_at, p.adopted_policy = "adopted", utcnow(), str(path)
    p.version += 1
    from opendip.settlement.output import sha256_file

    repo.audit(
        s, user, "proposal.adopt", "proposal", p.id,
        {"policy_file": path.name, "sha256": sha256_file(path), "base": Path(base_policy).name},
    )  # fmt: skip
    s.commit()
    return path


#: DIP ÷ FFS ratio bins of the distribution chart (upper bounds; the last is open).
RATIO_BINS = (
    (Decimal("0.8"), "<0.8"),
    (Decimal("0.9"), "0.8–0.9"),
    (Decimal("1.0"), "0.9–1.0"),
    (Decimal("1.1"), "1.0–1.1"),
    (Decimal("1.2"), "1.1–1.2"),
    (None, "≥1.2"),
)


def chart_data(p: Proposal) -> dict[str, Any]:
    """Per-hospital × pool clearing change and the ratio distribution (base vs variant)."""
    path = Path(p.result_dir) / "hospitals.parquet"
    if p.status in ("running", "failed") or not path.is_file():
        return {}
    rows = pq.read_table(path).to_pylist()

    def bin_of(v: Decimal | None) -> str | None:
        if v is None:
            return None
        return next(label for hi, label in RATIO_BINS if hi is None or v < hi)

    counts = {label: {"bin": label, "base": 0, "variant": 0} for _, label in RATIO_BINS}
    for r in rows:
        b = bin_of(r["dip_ffs_ratio"])
        if b is not None:
            counts[b]["base" if r["variant"] == "base" else "variant"] += 1
    change = [
        {"label": f"{r['hospital_id']}·{'职工' if r['pool'] == 'employee' else '居民'}",
         "change": r["clearing_change_fen"]}
        for r in sorted(
            (r for r in rows if r["variant"] != "base"),
            key=lambda r: (r["clearing_change_fen"], r["hospital_id"], r["pool"]),
        )
    ]  # fmt: skip
    return {"change": change, "bins": list(counts.values())}
