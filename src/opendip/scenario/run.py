"""Scenario runs (方案测算): a settled year re-run under policy/directory variants.

For each variant the engine's own steps run again: grouping (when the directory or the
grouping/directory policy changes), then the annual clearing (`settlement.run.run_year`:
scoring, point value, FFS bands, assessment, advances) with the variant's policy. Nothing
is reimplemented here; this module only prepares each variant's inputs, then compares the
variant runs with the base (`compare`).

Layout of the output directory::

    variants/base/             the base year re-run (must equal the base run to the fen)
    variants/v1/ …             one settlement run directory per variant (policy.yaml,
                               grouped.parquet/directory.parquet when regrouped, manifest)
    hospitals.parquet          per variant × hospital × pool, with change vs base
    summary.parquet            region summary per variant × pool
    方案测算.xlsx, summary.json, manifest.json
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opendip.assessment import assessment_dirs
from opendip.codes import CodeTables, demo_code_tables
from opendip.contract import GROUPED
from opendip.engine import connect
from opendip.grouping.batch import group_cases
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from opendip.reports.source import ReportInputError, find_optional_input, resolve_run
from opendip.scenario.compare import compare_runs
from opendip.scenario.variant import Variant, VariantError, dump_policy
from opendip.settlement.output import git_commit, sha256_file, write_json, write_parquet
from opendip.settlement.run import InputFiles, run_year

BASE_ID = "base"
BASE_NAME = "现行方案（基准）"
#: The platform compares at most this many variants side by side (plus the base).
MAX_COMPARED = 4


@dataclass
class BaseRun:
    """The settled year a scenario starts from, with its verified inputs."""

    run_dir: Path
    year: int
    files: InputFiles
    assessment: Path | None
    advances: Path | None
    manifest_sha256: str

    @classmethod
    def open(cls, run_dir: Path, search_dirs: tuple[Path, ...] = ()) -> BaseRun:
        try:
            src = resolve_run(Path(run_dir), search_dirs=search_dirs)
            if src.kind != "annual":
                raise VariantError(f"{run_dir} 是月度预结算运行；方案测算需要年终清算运行目录")
            from opendip.credit import credit_dirs

            side = (*search_dirs, *assessment_dirs(Path(run_dir)), *credit_dirs(Path(run_dir)))
            optional = {
                k: find_optional_input(src, k, side)
                for k in (
                    "reviews",
                    "history",
                    "assessment",
                    "advances",
                    "credit",
                    "prepayment_base",
                    "previous_assessment",
                )
            }
        except ReportInputError as exc:
            raise VariantError(str(exc)) from exc
        params = src.manifest.get("parameters") or {}
        files = InputFiles(
            policy=src.policy_path,
            cases=src.paths["cases"],
            grouped=src.paths["grouped"],
            directory=src.paths["directory"],
            hospitals=src.paths["hospitals"],
            reviews=optional["reviews"],
            history=optional["history"],
            all_case_mean_fen=params.get("all_case_mean_fen"),
            credit=optional["credit"],
            prepayment_base=optional["prepayment_base"],
            previous_assessment=optional["previous_assessment"],
        )
        return cls(
            run_dir=Path(run_dir),
            year=int(src.period),
            files=files,
            assessment=optional["assessment"],
            advances=optional["advances"],
            manifest_sha256=src.manifest_sha256,
        )


def variant_ids(variants: list[Variant]) -> list[str]:
    return [f"v{i + 1}" for i in range(len(variants))]


def _rescored_directory(directory: pa.Table, scores: dict[str, Decimal], source: str) -> pa.Table:
    """The directory with some groups' scores replaced (unknown codes are errors)."""
    codes = directory.column("group_code").to_pylist()
    unknown = sorted(set(scores) - set(codes))
    if unknown:
        raise VariantError(
            f"方案文件 {source}：directory_scores 中的病种不在目录中：{'、'.join(unknown[:10])}"
        )
    col = directory.column("score")
    new = pa.array(
        [scores.get(c, v) for c, v in zip(codes, col.to_pylist(), strict=True)], type=col.type
    )
    return directory.set_column(directory.schema.get_field_index("score"), "score", new)


def _regroup(
    base: BaseRun, variant: Variant, policy_path: Path, out: Path, codes: CodeTables, engine: str
) -> tuple[Path, Path]:
    """Group the year's cases again with the variant's directory and policy; QC-blocked cases
    stay blocked exactly as in the base grouping (its qc_excluded rows)."""
    from opendip.policy import PolicyFile

    directory = pq.read_table(variant.directory or base.files.directory)
    if variant.directory_scores:
        directory = _rescored_directory(directory, variant.directory_scores, variant.source)
    dir_path = write_parquet(directory, out / "directory.parquet")
    con = connect(engine)  # type: ignore[arg-type]
    base_grouped = con.read_parquet(str(base.files.grouped))
    status = base_grouped.select("case_id", blocking=base_grouped.match_step == "qc_excluded")
    grouped = group_cases(
        con.read_parquet(str(base.files.cases)),
        con.read_parquet(str(dir_path)),
        procedure_types(con, codes),
        PolicyFile.read(policy_path).at(),
        status,
        diagnosis_codes(con, codes),
    ).to_pyarrow()
    grouped = GROUPED.conform(grouped)
    grouped = grouped.sort_by("case_id")
    return write_parquet(grouped, out / "grouped.parquet"), dir_path


def run_scenario(
    base_dir: Path,
    variants: list[Variant],
    out: Path,
    *,
    codes: CodeTables | None = None,
    engine: str = "duckdb",
    search_dirs: tuple[Path, ...] = (),
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the base year and each variant; write the comparison. Returns the summary."""
    if not variants:
        raise VariantError("至少需要一个方案文件（--variant）")
    base = BaseRun.open(base_dir, search_dirs)
    codes = codes or demo_code_tables()
    out.mkdir(parents=True, exist_ok=True)
    step = on_step or (lambda _s: None)

    from opendip.policy import PolicyFile

    base_policy = PolicyFile.read(base.files.policy)
    # Validate every variant before any long work.
    applied = [v.apply(base_policy) for v in variants]

    runs: dict[str, Path] = {}
    grouped: dict[str, Path] = {}
    step(BASE_NAME)
    runs[BASE_ID] = out / "variants" / BASE_ID
    grouped[BASE_ID] = base.files.grouped
    run_year(
        base.files,
        base.year,
        runs[BASE_ID],
        assessment=base.assessment,
        advances=base.advances,
        excel=False,
        case_excel=False,
        engine=engine,
    )
    entries = []
    for vid, variant, pf in zip(variant_ids(variants), variants, applied, strict=True):
        step(variant.name)
        vdir = out / "variants" / vid
        vdir.mkdir(parents=True, exist_ok=True)
        policy_path = vdir / "policy.yaml"
        policy_path.write_text(dump_policy(pf.tree), encoding="utf-8")
        files = InputFiles(**{**base.files.__dict__, "policy": policy_path})
        if variant.needs_regrouping():
            files.grouped, files.directory = _regroup(
                base, variant, policy_path, vdir, codes, engine
            )
        grouped[vid] = files.grouped
        run_year(
            files,
            base.year,
            vdir,
            assessment=base.assessment,
            advances=base.advances,
            excel=False,
            case_excel=False,
            engine=engine,
        )
        runs[vid] = vdir
        entries.append(
            {
                "id": vid,
                "name": variant.name,
                "description": variant.description,
                "file": Path(variant.source).name,
                "sha256": variant.sha256,
                "policy_sha256": sha256_file(policy_path),
                "changed_keys": variant.changed_paths(),
                "directory_changed": variant.changes_directory,
                "regrouped": variant.needs_regrouping(),
            }
        )

    step("对比")
    names = {BASE_ID: BASE_NAME, **{e["id"]: e["name"] for e in entries}}
    hospitals, summary = compare_runs(runs, grouped, base.files.cases, names, engine)
    outputs = [
        write_parquet(hospitals, out / "hospitals.parquet"),
        write_parquet(summary, out / "summary.parquet"),
    ]
    from opendip.scenario.export import write_scenario_excel

    outputs.append(write_scenario_excel(hospitals, summary, out / "方案测算.xlsx", base.year))
    reproduced = _base_reproduced(base.run_dir, runs[BASE_ID])
    result = {
        "year": base.year,
        "base_run": base.run_dir.name,
        "base_reproduced": reproduced,
        "variants": [{"id": BASE_ID, "name": BASE_NAME}, *entries],
        "summary": summary.to_pylist(),
    }
    outputs.append(write_json(result, out / "summary.json"))
    manifest = {
        "command": "scenario run",
        "code": {"git_commit": git_commit()},
        "base_run": {
            "dir": base.run_dir.name,
            "manifest_sha256": base.manifest_sha256,
            "policy": {"file": base.files.policy.name, "sha256": sha256_file(base.files.policy)},
            "year": base.year,
        },
        "variants": entries,
        "parameters": {"engine": engine, "year": base.year},
        "row_counts": {"hospital_rows": hospitals.num_rows, "summary_rows": summary.num_rows},
        "outputs": {p.name: sha256_file(p) for p in sorted(outputs)},
        "variant_runs": {k: sha256_file(v / "manifest.json") for k, v in sorted(runs.items())},
    }
    write_json(manifest, out / "manifest.json")
    return result


def _base_reproduced(base_run: Path, rerun: Path) -> bool:
    """The base variant's hospital table equals the base run's, every column to the fen."""
    a = pq.read_table(base_run / "hospitals.parquet")
    b = pq.read_table(rerun / "hospitals.parquet")
    return a.equals(b)


def money_total(table: pa.Table, column: str) -> int:
    return int(pc.sum(table.column(column)).as_py() or 0)
