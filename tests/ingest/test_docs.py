from pathlib import Path

from opendip.ingest.docs import render_all


def test_data_contract_doc_is_in_sync() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "data-contract.md").read_text(
        encoding="utf-8"
    )
    assert render_all() in doc, (
        "docs/data-contract.md is out of date: python -m opendip.ingest.docs"
    )
