"""Scenario variants (方案): a policy overlay and/or a directory change, validated as the
policy is.

A variant file (YAML)::

    name: 二级医院系数上调           # 方案名称 (required)
    description: 二级 0.88→0.92；高倍率界值 2→2.5
    policy:                          # overlay: any policy key, by dotted path or nested
      scoring.hospital_coefficient.levels.secondary: 0.92
      scoring.deviation_bands[1].high_multiple: 2.5
      settlement:
        reserve_share: 0.06
    directory: 目录_新版.parquet      # optional: another directory version (what
                                     # `opendip directory diff` compares), path relative
                                     # to the variant file
    directory_scores: {G0001: 120}   # optional: re-scored groups (分值调整)

The overlay replaces values in the base policy tree (a dated value is replaced as a whole;
a list given whole replaces the list; `key[i]` changes one element). The result is checked by
the policy validator, so an error names the key path exactly as `opendip policy check` does.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from opendip.policy import PolicyError, PolicyFile
from opendip.policy.dated import is_dated
from opendip.policy.load import _DecimalLoader

#: Sections whose change means the cases must be grouped again.
REGROUP_SECTIONS = ("grouping", "directory")

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class VariantError(ValueError):
    """A variant that cannot be used (Chinese message naming the file and key)."""


@dataclass
class Variant:
    """One what-if: a name, the overlay as written, and an optional directory change."""

    name: str
    description: str = ""
    policy: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None
    directory_scores: dict[str, Decimal] = field(default_factory=dict)
    source: str = "<variant>"
    sha256: str = ""

    @property
    def changes_directory(self) -> bool:
        return self.directory is not None or bool(self.directory_scores)

    def changed_paths(self) -> list[str]:
        """Every key path the overlay sets, as written (dotted, with [i] for list items)."""
        return sorted(_flatten(self.policy))

    def needs_regrouping(self) -> bool:
        if self.changes_directory:
            return True
        return any(p.split(".")[0].split("[")[0] in REGROUP_SECTIONS for p in self.changed_paths())

    def apply(self, base: PolicyFile) -> PolicyFile:
        """The base policy with the overlay applied, validated (PolicyError names key paths)."""
        tree = copy.deepcopy(base.tree)
        for path, value in sorted(_flatten(self.policy).items()):
            _set(tree, parse_path(path, self.source), value, path, self.source)
        text = dump_policy(tree)
        pf = PolicyFile.parse(text, f"{self.source}（方案“{self.name}”）")
        problems = pf.issues()
        if problems:
            raise PolicyError(pf.source, problems)
        return pf

    @classmethod
    def read(cls, path: Path) -> Variant:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise VariantError(f"无法读取方案文件 {path}：{exc}") from exc
        return cls.parse(raw.decode("utf-8"), str(path), base_dir=path.parent)

    @classmethod
    def parse(cls, text: str, source: str = "<variant>", base_dir: Path | None = None) -> Variant:
        try:
            tree = yaml.load(text, Loader=_DecimalLoader)
        except yaml.YAMLError as exc:
            raise VariantError(f"方案文件 {source} 不是有效的 YAML：{exc}") from exc
        if not isinstance(tree, dict):
            raise VariantError(f"方案文件 {source}：顶层必须是映射（name、policy、directory 等）")
        known = {"name", "description", "policy", "directory", "directory_scores"}
        unknown = sorted(str(k) for k in tree if k not in known)
        if unknown:
            raise VariantError(
                f"方案文件 {source}：未知的键 {'、'.join(unknown)}（可用：{'、'.join(sorted(known))}）"
            )
        name = tree.get("name")
        if not isinstance(name, str) or not name.strip():
            raise VariantError(f"方案文件 {source}：name（方案名称）必填")
        overlay = tree.get("policy") or {}
        if not isinstance(overlay, dict):
            raise VariantError(f"方案文件 {source}：policy 必须是映射（键路径: 值）")
        directory = tree.get("directory")
        dir_path = None
        if directory is not None:
            dir_path = Path(str(directory))
            if not dir_path.is_absolute() and base_dir is not None:
                dir_path = base_dir / dir_path
            if not dir_path.is_file():
                raise VariantError(f"方案文件 {source}：directory 指定的目录文件不存在：{dir_path}")
        scores_raw = tree.get("directory_scores") or {}
        if not isinstance(scores_raw, dict):
            raise VariantError(f"方案文件 {source}：directory_scores 必须是 病种编码: 分值 映射")
        scores: dict[str, Decimal] = {}
        for code, value in scores_raw.items():
            try:
                score = Decimal(str(value))
            except ArithmeticError as exc:
                raise VariantError(
                    f"方案文件 {source}：directory_scores.{code} 必须是数字（当前值 {value!r}）"
                ) from exc
            if not score.is_finite() or score <= 0:
                raise VariantError(
                    f"方案文件 {source}：directory_scores.{code} 必须大于 0（当前值 {value!r}）"
                )
            scores[str(code)] = score
        for path in _flatten(overlay):
            parse_path(path, source)
        return cls(
            name=name.strip(),
            description=str(tree.get("description") or ""),
            policy=overlay,
            directory=dir_path,
            directory_scores=scores,
            source=source,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
        )


def parse_path(path: str, source: str = "<variant>") -> list[str | int]:
    """`settlement.ffs_bands[1].ratio_min` → ["settlement", "ffs_bands", 1, "ratio_min"]."""
    parts: list[str | int] = []
    pos = 0
    for m in _PART.finditer(path):
        if m.start() != pos and path[pos : m.start()] != ".":
            break
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or pos != len(path):
        raise VariantError(
            f"方案文件 {source}：键路径 {path!r} 格式不对（例：scoring.deviation_bands[1].high_multiple）"
        )
    return parts


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested overlay → {dotted path: value}; leaves are scalars, lists and dated values."""
    out: dict[str, Any] = {}
    if isinstance(node, dict) and not is_dated(node):
        for k, v in node.items():
            key = str(k)
            path = f"{prefix}.{key}" if prefix and not key.startswith("[") else f"{prefix}{key}"
            if isinstance(v, dict) and not is_dated(v) and v:
                out.update(_flatten(v, path))
            else:
                out[path] = v
        return out
    out[prefix] = node
    return out


def _set(tree: Any, parts: list[str | int], value: Any, path: str, source: str) -> None:
    node = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[: i + 1])
        where = where.lstrip(".")
        if isinstance(part, int):
            if not isinstance(node, list):
                raise VariantError(f"方案文件 {source}：{path}：{where} 不是列表，不能按序号修改")
            if part >= len(node):
                raise VariantError(
                    f"方案文件 {source}：{path}：{where} 超出列表长度（共 {len(node)} 项，序号从 0 起）"
                )
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            if not isinstance(node, dict) or is_dated(node):
                raise VariantError(
                    f"方案文件 {source}：{path}：{where} 的上一级不是映射（或是带日期的值，"
                    "请整体替换该值）"
                )
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]


class _Dumper(yaml.SafeDumper):
    pass


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value, "f")
    if "." not in text:
        return dumper.represent_int(int(text))
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(Decimal, _decimal)


def dump_policy(tree: dict[str, Any]) -> str:
    """A policy tree as YAML that `PolicyFile.parse` reads back to the same values."""
    return yaml.dump(tree, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
