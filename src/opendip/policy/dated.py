"""Dated parameters, OpenFisca style.

Any value in a policy file may be written plainly (`high_multiple: 2`) or dated::

    high_multiple:
      values:
        2026-01-01: 2
        2026-07-01: 2.5
      reference: 示范市医保发〔2026〕12号

A dated value is in force from its date until the next one. `resolve(tree, at)` replaces
every dated node by the value in force on `at`, giving a plain tree that the pydantic model
validates. `change_dates(tree)` lists every date on which some parameter changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

DATED_KEYS = frozenset({"values", "reference", "label"})


class DatedValueError(ValueError):
    """A dated node that cannot be resolved; `path` names it."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        super().__init__(message)


def is_dated(node: Any) -> bool:
    return isinstance(node, dict) and "values" in node and set(node) <= DATED_KEYS


def _as_date(key: Any, path: tuple[str | int, ...]) -> dt.date:
    if isinstance(key, dt.datetime):
        return key.date()
    if isinstance(key, dt.date):
        return key
    try:
        return dt.date.fromisoformat(str(key))
    except ValueError as exc:
        raise DatedValueError(
            path, f"日期 {key!r} 不是 YYYY-MM-DD 格式 / date {key!r} is not YYYY-MM-DD"
        ) from exc


def _dated_items(node: dict[str, Any], path: tuple[str | int, ...]) -> list[tuple[dt.date, Any]]:
    values = node["values"]
    if not isinstance(values, dict) or not values:
        raise DatedValueError(
            (*path, "values"),
            "values 必须是非空的 日期: 值 映射 / values must be a non-empty date: value mapping",
        )
    items = [(_as_date(k, (*path, "values")), v) for k, v in values.items()]
    dates = [d for d, _ in items]
    for d in dates:
        if dates.count(d) > 1:
            raise DatedValueError(
                (*path, "values"),
                f"日期 {d.isoformat()} 出现多次（写法不同但是同一天），只能保留一个"
                f" / date {d.isoformat()} appears more than once",
            )
    return sorted(items, key=lambda dv: dv[0])


def value_at(node: dict[str, Any], at: dt.date, path: tuple[str | int, ...] = ()) -> Any:
    """The value of a dated node in force on `at`."""
    items = _dated_items(node, path)
    current = None
    found = False
    for start, value in items:
        if start <= at:
            current, found = value, True
    if not found:
        raise DatedValueError(
            path,
            f"{at.isoformat()} 时尚无生效值（最早生效日 {items[0][0].isoformat()}）"
            f" / no value in force on {at.isoformat()} (first is {items[0][0].isoformat()})",
        )
    return current


def resolve(tree: Any, at: dt.date, path: tuple[str | int, ...] = ()) -> Any:
    """Replace every dated node in `tree` by its value on `at`."""
    if is_dated(tree):
        return resolve(value_at(tree, at, path), at, path)
    if isinstance(tree, dict):
        return {k: resolve(v, at, (*path, k)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve(v, at, (*path, i)) for i, v in enumerate(tree)]
    return tree


def iter_dated(
    tree: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every dated node with its key path."""
    if is_dated(tree):
        yield path, tree
        for _, v in _dated_items(tree, path):
            yield from iter_dated(v, path)
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from iter_dated(v, (*path, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from iter_dated(v, (*path, i))


def change_dates(tree: Any) -> list[dt.date]:
    """Sorted distinct dates on which any parameter of `tree` takes a new value."""
    dates: set[dt.date] = set()
    for path, node in iter_dated(tree):
        dates.update(d for d, _ in _dated_items(node, path))
    return sorted(dates)
