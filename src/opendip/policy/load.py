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
    """YAML loader that reads floats as exact Decimals (0.85 stays 0.85); `.nan`/`.inf`
    become Decimal NaN/Infinity (refused afterwards with their key path), and a date that
    does not exist (2026-02-30) stays text (refused by validation with its key path)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    special = {".nan": "NaN", ".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity"}
    try:
        return Decimal(special.get(text.lower(), text))
    except ArithmeticError:
        return Decimal("NaN")


def _timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)  # type: ignore[arg-type]
    except ValueError:
        return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)
_DecimalLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)

#: Bounds of what a policy file may hold: nodes after expanding YAML aliases (an "alias
#: bomb" of 20 KB expands to billions), and the magnitude of any number (money is int64 fen
#: inside the system; no regional parameter comes near 10^15).
MAX_POLICY_NODES = 200_000
MAX_NUMBER = Decimal(10) ** 15


def _node_path(path: tuple[str | int, ...]) -> str:
    return format_path(path)


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "<复合键>"


def _structure_issues(root: yaml.Node) -> list[PolicyIssue]:
    """Alias bombs and duplicate keys, found on the node graph before anything is built
    (each shared node is visited once)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # expanded size per node, bottom-up, without expanding
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = (
            [c for kv in node.value for c in kv]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        if done:
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), 1 << 62)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    if sizes[id(root)] > MAX_POLICY_NODES:
        return [
            PolicyIssue(
                "",
                f"YAML 别名（&/*）展开后超过 {MAX_POLICY_NODES:,} 项（疑似“别名炸弹”），已拒绝",
                f"YAML aliases expand to more than {MAX_POLICY_NODES:,} nodes (alias bomb)",
            )
        ]
    issues: list[PolicyIssue] = []
    seen: set[int] = set()
    walk: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while walk:
        node, path = walk.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                text = _key_text(key)
                if text in first:
                    where = _node_path((*path, text))
                    issues.append(
                        PolicyIssue(
                            where,
                            f"键 {text} 重复（第 {first[text]} 行与第 {key.start_mark.line + 1} "
                            "行），后一个会悄悄覆盖前一个：请只保留一个",
                            f"duplicate key {text} (lines {first[text]} and "
                            f"{key.start_mark.line + 1}); the later one would silently win",
                        )
                    )
                else:
                    first[text] = key.start_mark.line + 1
                walk.append((value, (*path, text)))
        elif isinstance(node, yaml.SequenceNode):
            walk.extend((c, (*path, i)) for i, c in enumerate(node.value))
    return issues


def _number_issues(tree: Any, path: tuple[str | int, ...] = ()) -> list[PolicyIssue]:
    """Numbers that are not finite or absurdly large, with their key paths."""
    if isinstance(tree, dict):
        return [i for k, v in tree.items() for i in _number_issues(v, (*path, str(k)))]
    if isinstance(tree, list):
        return [i for n, v in enumerate(tree) for i in _number_issues(v, (*path, n))]
    if isinstance(tree, bool) or not isinstance(tree, int | float | Decimal):
        return []
    value = Decimal(tree) if not isinstance(tree, Decimal) else tree
    if not value.is_finite():
        return [
            PolicyIssue(
                format_path(path),
                f"必须是有限的数字（当前值: {tree}）",
                f"must be a finite number (got {tree})",
            )
        ]
    if abs(value) >= MAX_NUMBER:
        return [
            PolicyIssue(
                format_path(path),
                f"数值过大（当前值: {tree}，上限 10^15）",
                f"number too large (got {tree}, limit 10^15)",
            )
        ]
    return []


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
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise PolicyError(
                str(path),
                [
                    PolicyIssue(
                        "",
                        f"文件不是 UTF-8 编码（第 {line} 行附近），可能是 GBK：请用 UTF-8 另存",
                        f"the file is not UTF-8 (near line {line}); save it as UTF-8",
                    )
                ],
            ) from exc
        parsed = cls.parse(text, str(path), hashlib.sha256(raw).hexdigest())
        _resolve_files(parsed.tree, path.resolve().parent)
        return parsed

    @classmethod
    def parse(cls, text: str, source: str = "<policy>", digest: str = "") -> PolicyFile:
        """Parse and check the file's structure: YAML syntax, alias bombs, duplicate keys,
        non-finite or huge numbers (each with its key path or line)."""
        loader = _DecimalLoader(text)  # SafeLoader subclass: no arbitrary objects
        try:
            node = loader.get_single_node()
            issues = _structure_issues(node) if node is not None else []
            if issues:
                raise PolicyError(source, issues)
            tree = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else ""
            raise PolicyError(
                source, [PolicyIssue("", f"YAML 语法错误 {where}: {exc}", f"YAML syntax: {exc}")]
            ) from exc
        except RecursionError as exc:
            raise PolicyError(
                source, [PolicyIssue("", "YAML 嵌套过深", "YAML nesting too deep")]
            ) from exc
        finally:
            loader.dispose()
        if not isinstance(tree, dict):
            raise PolicyError(
                source, [PolicyIssue("", "文件顶层必须是映射", "top level must be a mapping")]
            )
        numbers = _number_issues(tree)
        if numbers:
            raise PolicyError(source, numbers)
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
        try:
            versions = self.versions()
        except DatedValueError as exc:
            zh, _, en = str(exc).partition(" / ")
            return [PolicyIssue(format_path(exc.path), zh, en or zh), *self._year_issues()]
        for at in versions:
            for issue in self._issues_at(at):
                if (issue.path, issue.message_en) not in seen:
                    seen.add((issue.path, issue.message_en))
                    found.append(issue)
        found.extend(self._date_range_issues())
        found.extend(self._year_issues())
        return found

    def _year_issues(self) -> list[PolicyIssue]:
        """`year` must agree with the effective period it names."""
        year = self.tree.get("year")
        if not isinstance(year, int) or isinstance(year, bool):
            return []
        out = []
        for key in ("effective_from", "effective_to"):
            value = self.tree.get(key)
            try:
                day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
            except ValueError:
                continue
            if day.year != year:
                out.append(
                    PolicyIssue(
                        "year",
                        f"年度 {year} 与 {key} {day.isoformat()} 不符",
                        f"year {year} contradicts {key} {day.isoformat()}",
                    )
                )
        return out

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
