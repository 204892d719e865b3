"""Render the data contract's column tables for docs/data-contract.md (kept in sync by a test).

Run: python -m opendip.ingest.docs > docs/data-contract-tables.md
"""

from __future__ import annotations

from opendip.contract import (
    CASES,
    CODE_MAPPING,
    DIAGNOSIS_CODES,
    DIRECTORY,
    GROUPED,
    HOSPITALS,
    LABELS,
    PROCEDURE_CODES,
    SCORED,
    TableContract,
)

CONTRACTS: tuple[TableContract, ...] = (
    CASES, HOSPITALS, DIAGNOSIS_CODES, PROCEDURE_CODES, CODE_MAPPING, DIRECTORY, GROUPED, SCORED, LABELS,
)  # fmt: skip


def render(contract: TableContract) -> str:
    lines = [
        f"### `{contract.name}` — {contract.label}",
        "",
        "| column | type | 中文名 | required | unit | allowed | aliases |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in contract.columns:
        allowed = ", ".join(c.allowed) if c.allowed else ""
        aliases = ", ".join(c.aliases)
        unit = "fen (yuan at the edges)" if c.is_money else (c.unit or "")
        lines.append(
            f"| `{c.name}` | {c.type} | {c.label} | {'yes' if c.required else ''} | {unit} | {allowed} | {aliases} |"
        )
    return "\n".join(lines) + "\n"


def render_all() -> str:
    return "\n".join(render(c) for c in CONTRACTS)


if __name__ == "__main__":
    print(render_all(), end="")
