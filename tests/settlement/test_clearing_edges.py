"""The clearing rule steps "FFS bands" and "share among 医共体 members" at their edges, by hand.

Each unit is given its DIP side D and FFS side F in fen; the expected adjustment is worked out
from docs/money.md: keep_surplus −(S − min(round(S × share), round(F × cap_share))) with
S = max(D − F, 0) and a cap on the positive FFS side only; pay_dip 0; share_loss
round(max(F − D, 0) × share); then the unit's adjustment is shared among its members by FFS
amount (largest remainder, ties by hospital id), by head count when no member has FFS > 0.
"""

from __future__ import annotations

from decimal import Decimal

import builders as b
import ibis
import pytest

from opendip.settlement.clearing import _allocate, _ffs_band

D = Decimal

BANDS = [
    {"ratio_min": 1, "rule": "keep_surplus", "share": D("0.5"), "cap_share": D("0.5")},
    {"ratio_min": D("0.85"), "ratio_max": 1, "rule": "pay_dip"},
    {"ratio_max": D("0.85"), "rule": "share_loss", "share": D("0.5")},
]


def pol(**settlement):
    return b.policy(settlement=settlement).periods()[-1][2]


def bands(con, pol_, units):
    t = ibis.memtable(
        {
            "unit_id": [u[0] for u in units],
            "compare_dip_fen": [u[1] for u in units],
            "compare_ffs_fen": [u[2] for u in units],
        },
        schema={"unit_id": "string", "compare_dip_fen": "int64", "compare_ffs_fen": "int64"},
    )
    out = con.to_pyarrow(_ffs_band(t, pol_)).to_pylist()
    return {
        r["unit_id"]: (r["ffs_rule"], r["unit_adjustment_fen"], r["ffs_band_label"]) for r in out
    }


def test_each_band_with_the_ffs_side_at_its_smallest(con):
    got = bands(
        con,
        pol(ffs_bands=BANDS),
        [
            # F = 1 fen: S = 999, round(999 × 0.5) = 500, cap round(1 × 0.5) = 1 → kept 1
            ("F1", 1000, 1),
            # F = 2 fen: cap round(2 × 0.5) = 1 → kept 1, S = 998
            ("F2", 1000, 2),
            # F = 0: the cap is on a zero FFS side → nothing kept; the ratio is not defined
            # but D ≥ F × 1 holds, so the surplus band applies
            ("F0", 1000, 0),
            # ratio 0.9 → pay_dip: no adjustment, the amount is 0 (not missing)
            ("PAY", 900, 1000),
            # exactly 0.85 → pay_dip (ratio_min inclusive)
            ("AT85", 850, 1000),
            # 0.849: loss 151 × 0.5 = 75.5 → 76 (half up)
            ("LOSS", 849, 1000),
        ],
    )
    keep = "结余留用（比值≥1.00；留用50%，封顶按项目50%）"
    pay = "按DIP支付（比值≥0.85且<1.00）"
    assert got == {
        "F1": ("keep_surplus", 1 - 999, keep),
        "F2": ("keep_surplus", 1 - 998, keep),
        "F0": ("keep_surplus", 0 - 1000, keep),
        "PAY": ("pay_dip", 0, pay),
        "AT85": ("pay_dip", 0, pay),
        "LOSS": ("share_loss", 76, "超支分担（比值<0.85；分担50%）"),
    }


def test_without_bands_every_unit_is_paid_its_dip_side_and_the_label_says_so(con):
    got = bands(con, pol(ffs_bands=[]), [("A", 1000, 1), ("B", 1, 1000)])
    assert got == {
        "A": ("none", 0, "未设结余留用/超支分担"),
        "B": ("none", 0, "未设结余留用/超支分担"),
    }


def allocate(con, members, units):
    m = ibis.memtable(
        {
            "unit_id": [x[0] for x in members],
            "pool": ["employee"] * len(members),
            "hospital_id": [x[1] for x in members],
            "ffs_fund_fen": [x[2] for x in members],
        },
        schema={
            "unit_id": "string",
            "pool": "string",
            "hospital_id": "string",
            "ffs_fund_fen": "int64",
        },
    )
    u = ibis.memtable(
        {
            "unit_id": list(units),
            "pool": ["employee"] * len(units),
            "unit_adjustment_fen": list(units.values()),
        },
        schema={"unit_id": "string", "pool": "string", "unit_adjustment_fen": "int64"},
    )
    table = con.to_pyarrow(_allocate(m, u))
    assert str(table.schema.field("adjustment_fen").type) == "int64"  # whole fen, not float
    out = table.to_pylist()
    assert {c for r in out for c in r if c.startswith("_")} == set()
    return {r["hospital_id"]: r["adjustment_fen"] for r in out}


def test_members_without_ffs_share_by_head_count(con):
    got = allocate(
        con,
        [
            # CM0: no member has FFS > 0 (0 and a negative correction): −5 by head count,
            # 2 and 2, the remaining fen to the first hospital id
            ("CM0", "H1", 0),
            ("CM0", "H2", -30),
            # CM1: by FFS 1 : 3 → 7 × 1/4 = 1.75, 7 × 3/4 = 5.25 → 1 + 5, the last fen to
            # the larger remainder (0.75, H3)
            ("CM1", "H3", 1),
            ("CM1", "H4", 3),
            # CM2: a member with FFS ≤ 0 takes no share when another has FFS > 0
            ("CM2", "H5", 0),
            ("CM2", "H6", 10),
        ],
        {"CM0": -5, "CM1": 7, "CM2": -9},
    )
    assert got == {"H1": -3, "H2": -2, "H3": 2, "H4": 5, "H5": 0, "H6": -9}
    assert got["H1"] + got["H2"] == -5 and got["H3"] + got["H4"] == 7


def test_withholding_is_on_the_positive_fund_payable_only(con):
    from opendip.settlement.clearing import _withhold

    t = ibis.memtable({"fp": [-500, -1, 0, 1, 3, 1001]}, schema={"fp": "int64"})
    for share, expected in (
        # half of 1 fen is 0.5 → 1 (half up); a negative or zero payable withholds nothing
        (D("0.5"), [0, 0, 0, 1, 2, 501]),
        # 5 %: 1001 × 0.05 = 50.05 → 50; 3 × 0.05 = 0.15 → 0
        (D("0.05"), [0, 0, 0, 0, 0, 50]),
        (D(1), [0, 0, 0, 1, 3, 1001]),
    ):
        got = con.to_pyarrow(t.select(w=_withhold(t.fp, share))).column("w").to_pylist()
        assert got == expected, share


def test_the_last_fen_goes_to_the_largest_remainder_then_the_smaller_hospital_id(con):
    got = allocate(
        con,
        [
            # CM3: by FFS 3 : 1 → 7 × 3/4 = 5.25, 7 × 1/4 = 1.75 → 5 + 1, the last fen to
            # the larger remainder (0.75), the member listed second
            ("CM3", "H7", 3),
            ("CM3", "H8", 1),
            # CM4: 3 × 1/2 = 1.5 each, equal remainders: the fen to the smaller id, HA,
            # listed second
            ("CM4", "HB", 1),
            ("CM4", "HA", 1),
        ],
        {"CM3": 7, "CM4": -3},
    )
    assert got == {"H7": 5, "H8": 2, "HB": -1, "HA": -2}


@pytest.mark.parametrize("ffs_bands", [[], BANDS, [{"rule": "pay_dip"}]])
def test_the_unit_adjustment_is_int64_fen_with_or_without_bands(ffs_bands):
    t = ibis.memtable(
        {"unit_id": ["A"], "compare_dip_fen": [1000], "compare_ffs_fen": [1]},
        schema={"unit_id": "string", "compare_dip_fen": "int64", "compare_ffs_fen": "int64"},
    )
    assert str(_ffs_band(t, pol(ffs_bands=ffs_bands)).unit_adjustment_fen.type()) == "int64"


def test_a_share_loss_band_sharing_nothing_pays_nothing_on_top(con):
    no_share = [
        {"ratio_min": D("0.85"), "rule": "pay_dip"},
        {"ratio_max": D("0.85"), "rule": "share_loss", "share": 0},
    ]
    # loss 1000 − 849 = 151 fen × 0 = 0 (a share of 0 is not "no share given")
    got = bands(con, pol(ffs_bands=no_share), [("LOSS", 849, 1000)])
    assert got["LOSS"][:2] == ("share_loss", 0)


def test_members_with_1_fen_of_ffs_in_all_share_by_ffs_not_by_head_count(con):
    # CM5: positive FFS totals exactly 1 fen (H9): H9 takes the whole −5, H10 (FFS 0) none
    got = allocate(con, [("CM5", "H9", 1), ("CM5", "H10", 0)], {"CM5": -5})
    assert got == {"H9": -5, "H10": 0}


def test_bands_reaching_across_ratio_1_adjust_nothing_where_there_is_no_surplus_or_loss(con):
    """The policy does not pin keep_surplus above 1 or share_loss below 1: a surplus band from
    0.8 and a loss band up to 1.2 meet units with no surplus (D ≤ F) or no loss (D ≥ F)."""
    keep_from_08 = [
        {"ratio_min": D("0.8"), "rule": "keep_surplus", "share": D("0.3")},
        {"ratio_max": D("0.8"), "rule": "share_loss", "share": D("0.3")},
    ]
    # D = F and D = 0.9 F: S = 0, round(0 × 0.3) = 0 kept, nothing clawed back (a surplus of
    # 1 fen would keep round(0.3) = 0 and claw back 1)
    # D = 2 F: S = 1000, kept round(1000 × 0.3) = 300, clawed back 700
    units = [("EQ", 1000, 1000), ("R09", 900, 1000), ("R2", 2000, 1000)]
    got = bands(con, pol(ffs_bands=keep_from_08), units)
    assert {k: v[:2] for k, v in got.items()} == {
        "EQ": ("keep_surplus", 0),
        "R09": ("keep_surplus", 0),
        "R2": ("keep_surplus", -700),
    }
    loss_to_12 = [
        {"ratio_min": D("1.2"), "rule": "keep_surplus", "share": D("0.3")},
        {"ratio_max": D("1.2"), "rule": "share_loss", "share": D("0.5")},
    ]
    # D = F and D = 1.1 F: L = 0, nothing paid on top (a loss of 1 fen would pay 0.5 → 1)
    got = bands(con, pol(ffs_bands=loss_to_12), [("EQ", 1000, 1000), ("R11", 1100, 1000)])
    assert {k: v[:2] for k, v in got.items()} == {
        "EQ": ("share_loss", 0),
        "R11": ("share_loss", 0),
    }


def test_the_shown_ratio_is_half_up_to_4_decimals_and_null_without_a_positive_ffs_side(con):
    t = ibis.memtable(
        {
            "unit_id": ["F1", "THIRDS", "ZERO", "NEG"],
            "compare_dip_fen": [1000, 2, 1, 1],
            "compare_ffs_fen": [1, 3, 0, -5],
        },
        schema={"unit_id": "string", "compare_dip_fen": "int64", "compare_ffs_fen": "int64"},
    )
    out = _ffs_band(t, pol(ffs_bands=BANDS))
    assert str(out.dip_ffs_ratio.type()) == "decimal(18, 4)"
    got = {r["unit_id"]: r["dip_ffs_ratio"] for r in con.to_pyarrow(out).to_pylist()}
    # 1000 ÷ 1 = 1000; 2 ÷ 3 = 0.66666… → 0.6667; no ratio for an FFS side of 0 or below
    assert got == {"F1": D("1000.0000"), "THIRDS": D("0.6667"), "ZERO": None, "NEG": None}


def test_bands_listed_lowest_first_apply_at_their_own_edges(con):
    """The policy lists bands in any order (they only must not overlap): with the loss band
    first, a ratio of exactly 0.85 or 0.9 is still pay_dip and exactly 1 is keep_surplus."""
    got = bands(
        con,
        pol(ffs_bands=list(reversed(BANDS))),
        [("AT85", 850, 1000), ("R09", 900, 1000), ("AT1", 1000, 1000), ("R084", 849, 1000)],
    )
    assert {k: v[:2] for k, v in got.items()} == {
        "AT85": ("pay_dip", 0),
        "R09": ("pay_dip", 0),
        "AT1": ("keep_surplus", 0),
        "R084": ("share_loss", 76),  # 151 × 0.5 = 75.5 → 76
    }
