from pathlib import Path

import pytest

from opendip.contract import CASES, HOSPITALS
from opendip.ingest.docs import BEGIN, END, render, render_all, update

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"


def test_data_contract_doc_is_in_sync() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert render_all() in doc, (
        "docs/data-contract.md is out of date: python -m opendip.ingest.docs --write"
    )


def test_rendered_tables_list_every_column_with_its_label_and_aliases() -> None:
    text = render(CASES)
    for column in CASES.columns:
        assert f"| `{column.name}` | {column.type} | {column.label} |" in text
    assert "| 医疗总费用 | yes | fen (yuan at the edges) |" in text
    assert "总费用, MEDFEE_SUMAMT" in text
    assert "文本中以 \\| ; ， , 分隔" in text  # a '|' in a cell is escaped
    assert (
        "| `level` | string | 医院等级 | yes |  | tertiary, secondary, primary, unrated |"
        in render(HOSPITALS)
    )


def test_update_rewrites_a_stale_doc(tmp_path: Path) -> None:
    stale = tmp_path / "doc.md"
    stale.write_text(f"# Title\n\n{BEGIN}\nold\n{END}\n\nAfter.\n", encoding="utf-8")
    assert update(stale) is True
    text = stale.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\n") and text.endswith("\nAfter.\n")
    assert render_all() in text and "\nold\n" not in text
    assert update(stale) is False
    stale.write_text("no markers", encoding="utf-8")
    with pytest.raises(ValueError, match="没有生成区标记"):
        update(stale)
