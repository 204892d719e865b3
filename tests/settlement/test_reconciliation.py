"""Properties: reconciliation to the fen, and byte-identical reruns (CLI, manifest)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import builders as b
import pyarrow.parquet as pq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opendip.settlement import Inputs, settle_year
from tests.cases.clearing.test_clearing_examples import band_adjustment
from tests.profiles import examples

LEVELS = ("tertiary", "secondary", "primary")


@st.composite
def region(draw):
    hospitals = [
        b.hospital(
            f"H{i:02d}",
            draw(st.sampled_from(LEVELS)),
            community_id=draw(st.sampled_from([None, "CM1", "CM2"])),
        )
        for i in range(draw(st.integers(1, 5)))
    ]
    cases, grouped = [], []
    for j in range(draw(st.integers(1, 40))):
        cost = draw(st.integers(100_000, 20_000_000))
        fund = draw(st.integers(0, cost))
        copay = draw(st.integers(0, cost - fund))
        month = draw(st.integers(1, 12))
        cases.append(
            b.case(
                f"C{j:03d}",
                hospital_id=draw(st.sampled_from([h["hospital_id"] for h in hospitals])),
                insurance_type=draw(st.sampled_from(["employee", "resident"])),
                total_cost=cost,
                fund_paid=fund,
                personal_copay=copay,
                personal_selfpay=cost - fund - copay,
                settle_month=f"2026-{month:02d}",
                discharge_date=dt.date(2026, month, 1),
                department=draw(st.sampled_from(["内科", "外科"])),
            )
        )
        grouped.append(b.grouped(f"C{j:03d}", base_score=Decimal(draw(st.integers(1, 3000)))))
    budget = {
        "employee": {
            "fund_budget_yuan": draw(st.integers(1_000, 10_000_000)),
            "budget_point_value": 50,
        },
        "resident": {
            "fund_budget_yuan": draw(st.integers(1_000, 10_000_000)),
            "budget_point_value": 40,
        },
    }
    netting = draw(st.booleans())
    clearing = {
        "ffs_basis": draw(st.sampled_from(["fund", "total"])),
        "surplus_clawback_to": draw(st.sampled_from(["fund", "reserve"])),
        "deducted_deposit_to": draw(st.sampled_from(["fund", "reserve"])),
        "ffs_bands": [
            {
                "ratio_min": 1,
                "rule": "keep_surplus",
                "share": Decimal(draw(st.integers(0, 100))) / 100,
                "cap_share": Decimal(draw(st.integers(0, 30))) / 100,
            },
            {"ratio_min": Decimal("0.85"), "ratio_max": 1, "rule": "pay_dip"},
            {"ratio_max": Decimal("0.85"), "rule": "share_loss", "share": Decimal("0.5")},
        ],
    }
    return hospitals, cases, grouped, budget, netting, clearing


@settings(
    # a whole settlement per example: 4 locally, 50 in CI (tests/profiles.py)
    max_examples=examples(dev=4, ci=50),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # each example is a whole batch run: generate, do not spend minutes shrinking
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(region())
def test_every_total_reconciles_to_the_fen(con, data):
    hospitals, cases, grouped, budget, netting, clearing = data
    pf = b.policy(settlement={"budget": budget, "community_netting": netting, **clearing})
    inputs = Inputs(
        con.create_table("c", b.cases_table(cases), overwrite=True),
        con.create_table("g", b.grouped_table(grouped), overwrite=True),
        con.create_table("d", b.directory_table([b.group("G1")]), overwrite=True),
        con.create_table("h", b.hospitals_table(hospitals), overwrite=True),
        pf,
    )
    r = settle_year(inputs, 2026)
    recompute_and_compare(r, cases, budget, clearing["ffs_basis"])
    for pool in r.pools.to_pylist():
        assert pool["cases_equal_hospitals"] and pool["clearing_identity"]
        # each unit's adjustment is its band's formula on its two compared amounts
        # (recomputed here in plain Python from docs/money.md)
        final = pf.periods()[-1][2]
        for u in r.communities.to_pylist():
            if u["pool"] != pool["pool"]:
                continue
            rule, adjustment = band_adjustment(final, u["compare_dip_fen"], u["compare_ffs_fen"])
            assert (u["ffs_rule"], u["unit_adjustment_fen"]) == (rule, adjustment), u
        # the reserve: closing = opening − uses + what the policy sends back
        returns = (
            pool["surplus_cap_fen"] if clearing["surplus_clawback_to"] == "reserve" else 0
        ) + (pool["deposit_deducted_fen"] if clearing["deducted_deposit_to"] == "reserve" else 0)
        assert pool["reserve_opening_fen"] == pool["reserve_fen"]
        assert pool["reserve_returns_fen"] == returns
        assert (
            pool["reserve_closing_fen"] == pool["reserve_fen"] - pool["reserve_uses_fen"] + returns
        )
        assert pool["kept_in_fund_fen"] == (
            pool["surplus_cap_fen"] + pool["deposit_deducted_fen"] - returns
        )
        # per-case rounding: at most ½ fen per case, plus the point value's own rounding
        pv_err = Decimal("0.0000005") * pool["total_score"] * 100
        assert abs(pool["rounding_residual_fen"]) <= Decimal(pool["cases"]) / 2 + pv_err + 1


def _half_up(x: Fraction, places: int = 0) -> Fraction:
    scale = 10**places
    n = x * scale
    whole = (abs(n) + Fraction(1, 2)).__floor__()
    return Fraction(whole if n >= 0 else -whole, scale)


def recompute_and_compare(r, cases: list[dict], budget: dict, basis: str = "fund") -> None:
    """Every total of the settlement recomputed here from the per-case rows and the test
    policy (tests/scoring/base-policy.yaml: reserve 8%, fund_plus_personal, point value 6
    decimals, withholding 5% before July and 8% from July), not read from the code's flags."""
    rows = r.cases.to_pylist()
    by_id = {c["case_id"]: c for c in cases}
    month_of = {c["case_id"]: c["settle_month"] for c in cases}
    hospitals = {(h["hospital_id"], h["pool"]): h for h in r.hospitals.to_pylist()}
    for pool in r.pools.to_pylist():
        p = pool["pool"]
        mine = [c for c in rows if c["pool"] == p]
        budget_fen = budget[p]["fund_budget_yuan"] * 100
        reserve = int(_half_up(Fraction(budget_fen) * Fraction(8, 100)))
        assert (pool["budget_fen"], pool["reserve_fen"]) == (budget_fen, reserve)
        assert pool["available_fen"] == budget_fen - reserve - pool["non_dip_ffs_fen"]
        assert pool["non_dip_ffs_fen"] == 0 and pool["non_dip_cases"] == 0
        total_score = sum(Fraction(c["settled_score"]) for c in mine)
        assert Fraction(pool["total_score"]) == total_score
        personal = sum(c["personal_share_fen"] for c in mine)
        target = pool["available_fen"] + personal
        assert pool["point_value_target_fen"] == target
        pv = _half_up(Fraction(target, 100) / total_score, 6)
        assert Fraction(pool["point_value"]) == pv
        for c in mine:
            assert c["dip_amount_fen"] == int(_half_up(Fraction(c["settled_score"]) * pv * 100))
            given = by_id[c["case_id"]]
            assert c["personal_share_fen"] == given["personal_copay"] + given["personal_selfpay"]
            assert c["ffs_fund_fen"] == given["fund_paid"]
            assert c["fund_payable_fen"] == c["dip_amount_fen"] - c["personal_share_fen"]
        dip = sum(c["dip_amount_fen"] for c in mine)
        assert pool["dip_amount_cases_fen"] == dip == pool["dip_amount_hospitals_fen"]
        assert pool["rounding_residual_fen"] == target - dip
        # hospital rows are the sums of their cases; clearing arithmetic per hospital
        hs = [h for (_, hp), h in hospitals.items() if hp == p]
        assert {h["hospital_id"] for h in hs} == {c["hospital_id"] for c in mine}
        for h in hs:
            own = [c for c in mine if c["hospital_id"] == h["hospital_id"]]
            for col in ("dip_amount_fen", "personal_share_fen", "fund_payable_fen", "ffs_fund_fen"):
                assert h[col] == sum(c[col] for c in own), col
            assert h["cases"] == len(own)
            # comparison basis: fund payable against the fund paid by item, or the DIP total
            # against the total cost by item (settlement.ffs_basis)
            total_cost = sum(by_id[c["case_id"]]["total_cost"] for c in own)
            d, f = (
                (h["dip_amount_fen"], total_cost)
                if basis == "total"
                else (h["fund_payable_fen"], h["ffs_fund_fen"])
            )
            assert (h["compare_dip_fen"], h["compare_ffs_fen"]) == (d, f)
            assert h["dip_minus_ffs_fen"] == d - f
            assert h["adjusted_fen"] == h["fund_payable_fen"] + h["adjustment_fen"]
            assert h["deposit_deducted_fen"] == h["withheld_fen"] - h["returned_fen"]
            assert h["clearing_total_fen"] == h["adjusted_fen"] - h["deposit_deducted_fen"]
            assert h["clearing_payment_fen"] == h["clearing_total_fen"] - h["advances_fen"]
            # monthly advances at the budget point value, withheld per month
            bpv = Fraction(budget[p]["budget_point_value"])
            withheld = advances = 0
            for month in sorted({month_of[c["case_id"]] for c in own}):
                in_month = [c for c in own if month_of[c["case_id"]] == month]
                payable = sum(
                    int(_half_up(Fraction(c["settled_score"]) * bpv * 100))
                    - c["personal_share_fen"]
                    for c in in_month
                )
                share = Fraction(5, 100) if month < "2026-07" else Fraction(8, 100)
                w = int(_half_up(max(payable, 0) * share))
                withheld += w
                advances += payable - w
            assert (h["withheld_fen"], h["advances_fen"]) == (withheld, advances)
        # pool totals are the sums of the hospital rows
        for col in (
            "personal_share_fen", "fund_payable_fen", "ffs_fund_fen", "withheld_fen",
            "returned_fen", "deposit_deducted_fen", "clearing_total_fen", "advances_fen",
            "clearing_payment_fen",
        ):  # fmt: skip
            assert pool[col] == sum(h[col] for h in hs), col
        adjustments = [h["adjustment_fen"] for h in hs]
        assert pool["clearing_total_fen"] == (
            pool["fund_payable_fen"] + sum(adjustments) - pool["deposit_deducted_fen"]
        )
        assert pool["cases"] == len(mine)
        # a 医共体 (or a hospital alone) is adjusted as one unit, shared among its members
        units = [u for u in r.communities.to_pylist() if u["pool"] == p]
        assert sum(u["unit_adjustment_fen"] for u in units) == sum(adjustments)
        for u in units:
            members = [h for h in hs if h["unit_id"] == u["unit_id"]]
            assert u["members"] == len(members)
            assert u["unit_adjustment_fen"] == sum(h["adjustment_fen"] for h in members)
            assert u["fund_payable_fen"] == sum(h["fund_payable_fen"] for h in members)
            assert u["ffs_fund_fen"] == sum(h["ffs_fund_fen"] for h in members)
    # departments add up to hospitals
    for (hid, p), h in hospitals.items():
        ds = [d for d in r.departments.to_pylist() if d["hospital_id"] == hid and d["pool"] == p]
        assert sum(d["dip_amount_fen"] for d in ds) == h["dip_amount_fen"]
        assert sum(d["cases"] for d in ds) == h["cases"]


def _write_inputs(tmp: Path) -> dict[str, Path]:
    cases = [
        b.case("E1", hospital_id="H005", settle_month="2026-03"),
        b.case(
            "E2", hospital_id="H005", settle_month="2026-08", discharge_date=dt.date(2026, 8, 2)
        ),
        b.case("E3", hospital_id="H010", total_cost=1_600_000, fund_paid=1_300_000),
        b.case("R1", hospital_id="H010", insurance_type="resident", total_cost=2_500_000),
    ]
    files = {
        "cases": b.cases_table(cases),
        "grouped": b.grouped_table([b.grouped(c["case_id"]) for c in cases]),
        "directory": b.directory_table([b.group("G1")]),
        "hospitals": b.hospitals_table([b.hospital("H005"), b.hospital("H010", "secondary")]),
    }
    out = {}
    for name, table in files.items():
        out[name] = tmp / f"{name}.parquet"
        pq.write_table(table, out[name])
    (tmp / "reviews.csv").write_text("case_id,decision,reviewed_score\nR1,accept,180\n", "utf-8")
    out["reviews"] = tmp / "reviews.csv"
    out["policy"] = b.BASE_POLICY
    return out


def _args(files: dict[str, Path], out: Path) -> list[str]:
    args = []
    for k in ("policy", "cases", "grouped", "directory", "hospitals", "reviews"):
        args += [f"--{k}", str(files[k])]
    return [*args, "--out", str(out)]


def test_cli_runs_are_byte_identical_with_manifest(tmp_path):
    from opendip.cli.main import app

    files = _write_inputs(tmp_path)
    runner = CliRunner()
    outs = []
    # R1 is H010's one accepted review of 2 cases: over the 5% cap, so the clearing refuses
    # it unless the agency overrides (the reason goes into the manifest).
    refused = runner.invoke(
        app, ["settle", "year", "--year", "2026", *_args(files, tmp_path / "refused")]
    )
    assert refused.exit_code == 1 and "最多 0 例，特例单议通过 1" in refused.output
    override = ["--review-cap-override", "专家组确认"]
    for i in (1, 2):
        out = tmp_path / f"run{i}"
        res = runner.invoke(
            app, ["settle", "year", "--year", "2026", *_args(files, out), *override]
        )
        assert res.exit_code == 0, res.output
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert "manifest.json" in names and "reconciliation.md" in names
    assert any(n.endswith(".xlsx") for n in names)
    for n in names:
        assert (outs[0] / n).read_bytes() == (outs[1] / n).read_bytes(), n
    import json

    manifest = json.loads((outs[0] / "manifest.json").read_text("utf-8"))
    assert manifest["policy"]["version"] == "test.1"
    assert manifest["parameters"]["review_cap_override"] == "专家组确认"
    assert manifest["inputs"]["cases"]["sha256"]
    assert manifest["row_counts"]["dip_cases"] == 4
    scored = pq.read_table(outs[0] / "cases.parquet").to_pylist()
    r1 = next(r for r in scored if r["case_id"] == "R1")
    assert (r1["deviation"], r1["settled_score"]) == ("special_review", Decimal(180))

    month = tmp_path / "month"
    res = runner.invoke(app, ["settle", "month", "--month", "2026-03", *_args(files, month)])
    assert res.exit_code == 0, res.output
    assert "2026-03 月度预结算" in res.output
    res = runner.invoke(app, ["settle", "month", "--month", "2026-05", *_args(files, month)])
    assert res.exit_code != 0 and "没有病例" in res.output


def test_cli_case_excel_is_opt_in_and_engine_is_chosen(tmp_path):
    from opendip.cli.main import app

    files = _write_inputs(tmp_path)
    runner = CliRunner()
    plain, with_excel = tmp_path / "plain", tmp_path / "excel"
    override = ["--review-cap-override", "专家组确认"]  # the inputs exceed the review cap
    res = runner.invoke(app, ["settle", "year", "--year", "2026", *_args(files, plain), *override])
    assert res.exit_code == 0, res.output
    assert not list(plain.glob("病例明细_*.xlsx"))
    assert "--case-excel" in res.output  # says how to get it
    args = [*_args(files, with_excel), *override, "--case-excel", "--engine", "duckdb"]
    res = runner.invoke(app, ["settle", "year", "--year", "2026", *args])
    assert res.exit_code == 0, res.output
    assert [p.name for p in with_excel.glob("病例明细_*.xlsx")] == ["病例明细_2026.xlsx"]
    bad = runner.invoke(app, ["settle", "year", "--year", "2026", *args[:-1], "oracle"])
    assert bad.exit_code != 0
