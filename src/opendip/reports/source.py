"""Finding and reading what a settlement run was computed from.

A settlement run directory (written by `opendip.settlement.run.run_year` / `run_month`)
holds `manifest.json` and `cases.parquet` (the SCORED contract). The manifest names each
input file and its SHA-256, not its location; inputs are looked for next to the run (the
run directory, then its parents: a platform run keeps its cases one level up) and among
the shipped policy files, and a file is used only when its hash matches the manifest, so a
report always reads exactly what the settlement read. Explicit paths may be passed
instead (e.g. for a command-line run whose inputs live elsewhere); they are hash-checked too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendip.policy import SHIPPED_POLICIES, PolicyError, PolicyFile
from opendip.settlement.output import OutputIntegrityError, sha256_file, verify_outputs


class ReportInputError(ValueError):
    """A report cannot be built from its inputs (Chinese message naming what is wrong)."""


#: Inputs a report reads besides the run's own tables.
NEEDED = ("cases", "grouped", "directory", "hospitals")


@dataclass
class RunSources:
    run_dir: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    kind: str
    period: str
    policy_path: Path
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def policy(self) -> PolicyFile:
        return PolicyFile.read(self.policy_path)


def search_places(run_dir: Path, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Where a run's inputs are looked for, in order: the run directory, its two parents
    (a platform run keeps its cases one level up), then `extra` (e.g. the region directory)."""
    return [run_dir, *list(run_dir.parents)[:2], *extra]


def _candidates(run_dir: Path, name: str, extra: tuple[Path, ...] = ()) -> list[Path]:
    return [d / name for d in search_places(run_dir, extra) if (d / name).is_file()]


def _matching(paths: list[Path], sha: str, exclude: Path | None = None) -> Path | None:
    for p in paths:
        if exclude is not None and p.resolve() == exclude.resolve():
            continue
        if sha256_file(p) == sha:
            return p
    return None


def read_manifest(run_dir: Path) -> tuple[dict[str, Any], str]:
    if not run_dir.is_dir():
        raise ReportInputError(f"结算运行目录不存在：{run_dir}")
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise ReportInputError(
            f"{run_dir} 不是结算运行目录：缺少 manifest.json（请指定 opendip settle 的输出目录）"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"无法读取结算运行清单 {path}：{exc}") from exc
    if not isinstance(manifest, dict) or "inputs" not in manifest or "policy" not in manifest:
        raise ReportInputError(f"结算运行清单 {path} 缺少 inputs 或 policy 项")
    if not (run_dir / "cases.parquet").is_file():
        raise ReportInputError(f"结算运行目录 {run_dir} 缺少病例结果 cases.parquet")
    try:
        verify_outputs(run_dir, manifest)  # never report on outputs changed after the run
    except OutputIntegrityError as exc:
        raise ReportInputError(str(exc)) from exc
    return manifest, sha256_file(path)


def _period(manifest: dict[str, Any]) -> tuple[str, str]:
    params = manifest.get("parameters") or {}
    if "year" in params:
        return "annual", str(params["year"])
    if "month" in params:
        return "monthly", str(params["month"])
    raise ReportInputError("结算运行清单未说明期间（parameters 中没有 year 或 month）")


def resolve_run(
    run_dir: Path,
    inputs: dict[str, Path] | None = None,
    search_dirs: tuple[Path, ...] = (),
) -> RunSources:
    """The run's manifest and the verified locations of its policy and input files.

    `inputs` names files explicitly (checked against the manifest's hashes); otherwise each
    file is looked for by name next to the run, then in `search_dirs` (e.g. the platform's
    region directory), and, for the policy, among the shipped policies.
    """
    run_dir = Path(run_dir)
    extra = tuple(Path(d) for d in search_dirs)
    manifest, digest = read_manifest(run_dir)
    kind, period = _period(manifest)
    given = {k: Path(v) for k, v in (inputs or {}).items() if v is not None}
    paths: dict[str, Path] = {}
    for key in NEEDED:
        entry = manifest["inputs"].get(key)
        if not entry:
            raise ReportInputError(f"结算运行清单没有记录输入 {key}")
        if key in given:
            found = given[key] if given[key].is_file() else None
            if found is None:
                raise ReportInputError(f"指定的输入文件 {key} 不存在：{given[key]}")
            if sha256_file(found) != entry["sha256"]:
                raise ReportInputError(
                    f"指定的输入文件 {key}（{found}）与结算运行时使用的文件不一致（SHA-256 不符）"
                )
        else:
            # The run's own cases.parquet (scored) is not the settlement-list input.
            own = run_dir / "cases.parquet"
            found = _matching(
                _candidates(run_dir, entry["file"], extra), entry["sha256"], exclude=own
            )
            if found is None:
                raise ReportInputError(
                    f"找不到结算运行的输入文件 {key}（{entry['file']}，SHA-256 "
                    f"{entry['sha256'][:12]}…）：请用参数指定其路径"
                )
        paths[key] = found
    pol = manifest["policy"]
    if "policy" in given:
        policy_path = given["policy"]
        if not policy_path.is_file():
            raise ReportInputError(f"指定的政策文件不存在：{policy_path}")
        if sha256_file(policy_path) != pol.get("sha256"):
            raise ReportInputError(
                f"指定的政策文件 {policy_path} 与结算运行时使用的政策不一致（SHA-256 不符）"
            )
    else:
        found = _matching(
            _candidates(run_dir, str(pol.get("file", "")), (*extra, SHIPPED_POLICIES)),
            str(pol.get("sha256", "")),
        )
        if found is None:
            raise ReportInputError(
                f"找不到结算运行使用的政策文件 {pol.get('file')}（版本 {pol.get('version')}）："
                "请用参数指定其路径"
            )
        policy_path = found
    try:
        PolicyFile.read(policy_path).periods()
    except PolicyError as exc:
        raise ReportInputError(f"政策文件 {policy_path} 无效：{exc}") from exc
    return RunSources(run_dir, manifest, digest, kind, period, policy_path, paths)


def find_optional_input(
    src: RunSources, key: str, search_dirs: tuple[Path, ...] = ()
) -> Path | None:
    """An optional input the manifest recorded (e.g. reviews), found beside the run by name
    and hash; None when the run had none. A recorded input that cannot be found is an error."""
    entry = (src.manifest.get("inputs") or {}).get(key)
    if not entry:
        return None
    found = _matching(_candidates(src.run_dir, entry["file"], search_dirs), entry["sha256"])
    if found is None:
        raise ReportInputError(
            f"找不到结算运行的输入文件 {key}（{entry['file']}，SHA-256 {entry['sha256'][:12]}…）"
        )
    return found
