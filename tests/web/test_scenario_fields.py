"""方案测算 form: the clearing bands are form fields in Chinese; a boundary where two bands
meet moves both, so the variant stays valid (no gap, no overlap)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from opendip.policy import PolicyFile
from opendip.scenario import Variant, VariantError
from opendip.web.scenarios import build_variant, form_fields

DEMO = Path(__file__).resolve().parents[2] / "src/opendip/data/policies/demo-region.yaml"


def test_band_fields_are_labelled_in_chinese_with_current_values() -> None:
    fields = {f["key"]: f for f in form_fields(DEMO)}
    upper = fields["settlement.ffs_bands[0].ratio_min"]
    assert upper["value"] == Decimal("1.0")
    assert upper["also"] == ["settlement.ffs_bands[1].ratio_max"]
    assert upper["label"] == "清算分档界值：第1档（结余留用）下限 = 第2档（按DIP支付）上限"
    lower = fields["settlement.ffs_bands[1].ratio_min"]
    assert lower["value"] == Decimal("0.85")
    assert lower["also"] == ["settlement.ffs_bands[2].ratio_max"]
    assert (
        fields["settlement.ffs_bands[0].cap_share"]["label"] == "第1档（结余留用）结余留用上限比例"
    )
    assert fields["settlement.ffs_bands[2].share"]["value"] == Decimal("0.5")
    assert fields["settlement.ffs_bands[2].share"]["label"] == "第3档（超支分担）超支分担比例"


def test_moving_a_boundary_moves_both_bands() -> None:
    base = PolicyFile.read(DEMO)
    text = build_variant("下限 0.9", "", {"settlement.ffs_bands[1].ratio_min": "0.9"}, "", base)
    overlay = yaml.safe_load(text)["policy"]
    assert overlay == {
        "settlement.ffs_bands[1].ratio_min": 0.9,
        "settlement.ffs_bands[2].ratio_max": 0.9,
    }
    pol = Variant.parse(text, "方案").apply(base).periods()[-1][2]
    bands = pol.settlement.ffs_bands
    assert (bands[1].ratio_min, bands[2].ratio_max) == (Decimal("0.9"), Decimal("0.9"))
    assert bands[0].ratio_min == Decimal("1.0")


def test_a_non_number_names_the_field_in_chinese() -> None:
    base = PolicyFile.read(DEMO)
    with pytest.raises(VariantError, match="第3档（超支分担）超支分担比例：必须是数字"):
        build_variant("x", "", {"settlement.ffs_bands[2].share": "一半"}, "", base)
