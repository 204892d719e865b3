"""Chinese names for directory groups named by their codes.

A core group the history produced has no name of its own; the build names it by its keys
(`K35.8 47.0100`). `name_groups` names such rows from the region's code tables: the
diagnosis subcategory's name and the names of the procedures (急性阑尾炎（阑尾切除术）), so
that the directory reads like one and can be searched by a Chinese word.
"""

from __future__ import annotations

import pyarrow as pa

from opendip.codes import CodeTables

#: How the build names a core row with no procedure (`<key> 保守`).
CONSERVATIVE = "保守"


def _first_names(codes: list[str], names: list[str], keys: list[str]) -> dict[str, str]:
    """Key → the name of its shortest code (the subcategory's own title before subtypes)."""
    best: dict[str, tuple[int, str, str]] = {}
    for code, name, key in zip(codes, names, keys, strict=True):
        cand = (len(code), code, name)
        if key not in best or cand < best[key]:
            best[key] = cand
    return {k: v[2] for k, v in best.items()}


def name_groups(directory: pa.Table, codes: CodeTables) -> pa.Table:
    """The directory with code-named core/basic rows named from the code tables."""
    dx = codes.diagnoses
    dx_names = _first_names(
        dx["code"].to_pylist(), dx["name"].to_pylist(), dx["subcategory"].to_pylist()
    )
    proc_names = dict(
        zip(codes.procedures["code"].to_pylist(), codes.procedures["name"].to_pylist(), strict=True)
    )
    names = []
    for row in directory.select(
        ["group_name", "group_type", "diagnosis_key", "procedure_key"]
    ).to_pylist():
        name, key, procs = row["group_name"], row["diagnosis_key"], row["procedure_key"] or ""
        coded = name == f"{key} {procs or CONSERVATIVE}"
        if row["group_type"] in ("core", "basic") and coded and key in dx_names:
            parts = [proc_names.get(p, p) for p in procs.split("+") if p]
            what = "、".join(parts) if parts else "保守治疗"
            name = f"{dx_names[key]}（{what}）"
        names.append(name)
    i = directory.schema.get_field_index("group_name")
    return directory.set_column(i, directory.schema.field(i), pa.array(names, pa.string()))


__all__ = ["name_groups"]
