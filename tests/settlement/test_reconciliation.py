"""Properties: reconciliation to the fen, and byte-identical reruns (CLI, manifest)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import builders as b
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opendip.settlement import Inputs, settle_year

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
    return hospitals, cases, grouped, budget, netting


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # each example is a whole batch run: generate, do not spend minutes shrinking
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(region())
def test_every_total_reconciles_to_the_fen(con, data):
    hospitals, cases, grouped, budget, netting = data
    pf = b.policy(settlement={"budget": budget, "community_netting": netting})
    inputs = Inputs(
        con.create_table("c", b.cases_table(cases), overwrite=True),
        con.create_table("g", b.grouped_table(grouped), overwrite=True),
        con.create_table("d", b.directory_table([b.group("G1")]), overwrite=True),
        con.create_table("h", b.hospitals_table(hospitals), overwrite=True),
        pf,
    )
    r = settle_year(inputs, 2026)
    for pool in r.pools.to_pylist():
        assert pool["cases_equal_hospitals"] and pool["clearing_identity"]
        hs = r.hospitals.filter(pc.equal(r.hospitals["pool"], pool["pool"]))
        assert pc.sum(hs["clearing_payment_fen"]).as_py() == pool["clearing_payment_fen"]
        # Σ adjustments of members = their unit's adjustment, exactly
        units = r.communities.filter(pc.equal(r.communities["pool"], pool["pool"]))
        assert pc.sum(hs["adjustment_fen"]).as_py() == pc.sum(units["unit_adjustment_fen"]).as_py()
        # per-case rounding: at most ½ fen per case, plus the point value's own rounding
        pv_err = Decimal("0.0000005") * pool["total_score"] * 100
        assert abs(pool["rounding_residual_fen"]) <= Decimal(pool["cases"]) / 2 + pv_err + 1
    depts = r.departments
    assert pc.sum(depts["dip_amount_fen"]).as_py() == pc.sum(r.hospitals["dip_amount_fen"]).as_py()


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
    for i in (1, 2):
        out = tmp_path / f"run{i}"
        res = runner.invoke(app, ["settle", "year", "--year", "2026", *_args(files, out)])
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
