"""Reading a policy file: YAML → dated tree → validated `Policy` at a date."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opendip.policy.dated import DatedValueError, change_dates, resolve
from opendip.policy.model import Policy
from opendip.policy.sections.base import KEY_MARK


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy file, at a key path such as `scoring.deviation_bands[0]`."""

    path: str
    message_zh: str
    message_en: str
    at: dt.date | None = None

    def __str__(self) -> str:
        when = f" （{self.at.isoformat()} 生效的版本）" if self.at else ""
        return f"{self.path or '(根)'}: {self.message_zh} / {self.message_en}{when}"


class PolicyError(ValueError):
    """A policy file that cannot be used; `issues` lists every problem found."""

    def __init__(self, source: str, issues: list[PolicyIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"政策文件 {source} 有 {len(issues)} 处错误 / policy errors:\n{lines}")


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads floats as exact Decimals (0.85 stays 0.85)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))  # type: ignore[arg-type]


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def format_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_ZH = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知的键（可能拼写错误）",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "必须大于或等于 {ge}",
    "less_than": "必须小于 {lt}",
    "less_than_equal": "必须小于或等于 {le}",
    "literal_error": "取值必须是 {expected} 之一",
    "int_parsing": "必须是整数",
    "int_type": "必须是整数",
    "decimal_parsing": "必须是数字",
    "decimal_type": "必须是数字",
    "float_parsing": "必须是数字",
    "string_type": "必须是文本",
    "bool_parsing": "必须是 true 或 false",
    "bool_type": "必须是 true 或 false",
    "date_from_datetime_parsing": "必须是日期 YYYY-MM-DD",
    "date_parsing": "必须是日期 YYYY-MM-DD",
    "date_type": "必须是日期 YYYY-MM-DD",
    "list_type": "必须是列表",
    "dict_type": "必须是映射（键: 值）",
    "model_type": "必须是映射（键: 值）",
    "too_short": "至少需要 {min_length} 项",
    "string_pattern_mismatch": "格式不符（{pattern}）",
}


def _issue_from_pydantic(err: dict[str, Any], at: dt.date | None) -> PolicyIssue:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error":
        # Our own validators already write "中文 / English".
        text = str(ctx.get("error", err["msg"]))
        path = format_path(loc)
        if text.startswith(KEY_MARK):
            key, _, text = text[len(KEY_MARK) :].partition("@ ")
            path = f"{path}.{key}" if path else key
        zh, _, en = text.partition(" / ")
        return PolicyIssue(path, zh, en or zh, at)
    template = _ZH.get(err["type"], "取值无效")
    try:
        zh = template.format(**ctx)
    except (KeyError, IndexError):
        zh = template
    value = err.get("input")
    if err["type"] != "missing" and not isinstance(value, dict | list):
        zh += f"（当前值: {value!r}）"
    return PolicyIssue(format_path(loc), zh, err["msg"], at)


class PolicyFile:
    """A policy file as written: possibly dated, resolved to a `Policy` per date."""

    def __init__(self, tree: dict[str, Any], source: str = "<policy>", digest: str = "") -> None:
        self.tree = tree
        self.source = source
        self.sha256 = digest or hashlib.sha256(repr(tree).encode()).hexdigest()
        # The tree is not changed after parsing: checks and resolutions are computed once
        # per file object (a long-running service keeps one per file version, PolicyCache).
        self._memo: dict[Any, Any] = {}

    @classmethod
    def read(cls, path: str | Path) -> PolicyFile:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(
                str(path), [PolicyIssue("", f"无法读取文件: {exc}", str(exc))]
            ) from exc
        parsed = cls.parse(raw.decode("utf-8"), str(path), hashlib.sha256(raw).hexdigest())
        _resolve_files(parsed.tree, path.resolve().parent)
        return parsed

    @classmethod
    def parse(cls, text: str, source: str = "<policy>", digest: str = "") -> PolicyFile:
        try:
            tree = yaml.load(
                text, Loader=_DecimalLoader
            )  # SafeLoader subclass: no arbitrary objects
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else ""
            raise PolicyError(
                source, [PolicyIssue("", f"YAML 语法错误 {where}: {exc}", f"YAML syntax: {exc}")]
            ) from exc
        if not isinstance(tree, dict):
            raise PolicyError(
                source, [PolicyIssue("", "文件顶层必须是映射", "top level must be a mapping")]
            )
        return cls(tree, source, digest or hashlib.sha256(text.encode()).hexdigest())

    @cached_property
    def change_dates(self) -> list[dt.date]:
        """Dates on which some parameter changes (empty when nothing is dated)."""
        return change_dates(self.tree)

    def _effective_from(self) -> dt.date:
        value = self.tree.get("effective_from")
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            year = self.tree.get("year")
            return dt.date(int(year), 1, 1) if isinstance(year, int) else dt.date.min

    def versions(self) -> list[dt.date]:
        """Start dates of each distinct version of the policy within its year."""
        start = self._effective_from()
        return sorted({start, *(d for d in self.change_dates if d > start)})

    def issues(self) -> list[PolicyIssue]:
        """Every problem, checking each dated version of the policy."""
        if "issues" not in self._memo:
            self._memo["issues"] = self._find_issues()
        return list(self._memo["issues"])

    def _find_issues(self) -> list[PolicyIssue]:
        found: list[PolicyIssue] = []
        seen: set[tuple[str, str]] = set()
        for at in self.versions():
            for issue in self._issues_at(at):
                if (issue.path, issue.message_en) not in seen:
                    seen.add((issue.path, issue.message_en))
                    found.append(issue)
        found.extend(self._date_range_issues())
        return found

    def _issues_at(self, at: dt.date) -> list[PolicyIssue]:
        try:
            Policy.model_validate(resolve(self.tree, at))
        except DatedValueError as exc:
            zh, _, en = str(exc).partition(" / ")
            return [PolicyIssue(format_path(exc.path), zh, en, at)]
        except ValidationError as exc:
            multi = len(self.versions()) > 1
            return [_issue_from_pydantic(e, at if multi else None) for e in exc.errors()]
        return []

    def _date_range_issues(self) -> list[PolicyIssue]:
        try:
            lo = dt.date.fromisoformat(str(self.tree.get("effective_from")))
            hi = dt.date.fromisoformat(str(self.tree.get("effective_to")))
        except ValueError:
            return []
        return [
            PolicyIssue(
                "",
                f"参数变更日期 {d.isoformat()} 不在生效期 {lo}～{hi} 内",
                f"change date {d.isoformat()} lies outside the effective period {lo}..{hi}",
            )
            for d in self.change_dates
            if not lo <= d <= hi
        ]

    def at(self, when: dt.date | None = None) -> Policy:
        """The policy in force on `when` (default: its first day). Raises PolicyError."""
        problems = self.issues()
        if problems:
            raise PolicyError(self.source, problems)
        when = when or self._effective_from()
        key = ("at", when)
        if key not in self._memo:
            if len(self._memo) > 512:  # many distinct dates: keep memory bounded
                self._memo = {"issues": self._memo["issues"]}
            self._memo[key] = Policy.model_validate(resolve(self.tree, when))
        return self._memo[key]

    def periods(self) -> list[tuple[dt.date, dt.date, Policy]]:
        """(start, end inclusive, policy) for each version across the effective period."""
        if "periods" in self._memo:
            return list(self._memo["periods"])
        first = self.at()
        starts = self.versions()
        ends = [d - dt.timedelta(days=1) for d in starts[1:]] + [first.effective_to]
        periods = [(s, e, self.at(s)) for s, e in zip(starts, ends, strict=True)]
        self._memo["periods"] = periods
        return list(periods)


def load_policy(path: str | Path, at: dt.date | None = None) -> Policy:
    """Read, validate and resolve a policy file at a date (default: its first day)."""
    return PolicyFile.read(path).at(at)


def _resolve_files(tree: dict[str, Any], base: Path) -> None:
    """A file a policy names by a relative path is relative to the policy file."""
    aux = (tree.get("directory") or {}).get("auxiliary")
    if isinstance(aux, dict) and isinstance(aux.get("file"), str):
        name = aux["file"]
        if name != "demo" and not Path(name).is_absolute():
            aux["file"] = str(base / name)
