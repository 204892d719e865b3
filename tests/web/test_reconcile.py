"""对账 (issue 19 §3): planted differences of each kind are found exactly, in OpenDIP's own
format and in the documented Chinese mapping; bad rows are set aside with reasons."""

from __future__ import annotations

import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.web.conftest import login


@pytest.fixture
def world(region_dir, make_app, case_ids):
    own = case_ids["H001"][:6]
    scored = pa.table(
        {
            "case_id": own,
            "hospital_id": ["H001"] * 6,
            "group_code": [f"G{i}" for i in range(6)],
            "settled_score": pa.array([Decimal(f"{100 + i}.5000") for i in range(6)],
                                      pa.decimal128(18, 4)),
            "dip_amount_fen": pa.array([100_000 + i for i in range(6)], pa.int64()),
            "explanation": [f"本平台说明{i}" for i in range(6)],
        }
    )  # fmt: skip
    pq.write_table(scored, region_dir / "scored.parquet")
    app = make_app()
    return app, own


def _post(client, text: str, fmt: str, name: str = "结果.csv"):
    return client.post(
        "/reconcile",
        data={"format": fmt},
        files={"file": (name, io.BytesIO(text.encode("utf-8")), "text/csv")},
    )


def _found(html: str) -> dict[str, str]:
    import re

    rows = re.findall(r'<tr data-case="([^"]+)"><td>[^<]*</td><td>(.*?)</td>', html, re.S)
    return {c: " ".join(re.findall(r'class="badge">([^<]+)<', kinds)) for c, kinds in rows}


def test_planted_differences_found_exactly(world) -> None:
    app, c = world
    lines = ["case_id,group_code,settled_score,dip_amount_fen,explanation"]
    lines.append(f"{c[0]},G0,100.5,100000,一致")  # same (score spelled with fewer decimals)
    lines.append(f"{c[1]},GX,101.5,100001,经办入组 GX")  # group differs
    lines.append(f"{c[2]},G2,99.0000,100002,")  # score differs
    lines.append(f"{c[3]},G3,103.5000,99999,")  # amount differs
    # c[4] missing in the agency's file
    lines.append(f"{c[5]},G5,105.5000,100005,")  # same
    lines.append("NOT-OURS-1,G9,1,100,经办有")  # missing in OpenDIP
    lines.append("BAD-1,G1,abc,100,")  # set aside: score not a number
    r = _post(login(app, "h1"), "\n".join(lines) + "\n", "opendip")
    assert r.status_code == 200, r.text
    assert _found(r.text) == {
        c[1]: "病种不一致",
        c[2]: "分值不一致",
        c[3]: "金额不一致",
        c[4]: "本平台有、经办机构无",
        "NOT-OURS-1": "经办机构有、本平台无",
    }
    assert "第 8 行：settled_score：须为数字" in r.text
    assert "读入 7 行，比对 6 行" in r.text
    assert "本平台说明1" in r.text and "经办入组 GX" in r.text
    assert f"/applications/new?kind=dispute&amp;case_id={c[1]}" in r.text
    assert "/applications/new?kind=dispute&amp;case_id=NOT-OURS-1" not in r.text
    # one dispute on every differing case OpenDIP has: the form comes prefilled
    import html
    import re

    link = html.unescape(re.search(r'id="dispute-all" href="([^"]+)"', r.text).group(1))
    form = login(app, "h1").get(link)
    assert form.status_code == 200
    box = re.search(r'<textarea name="case_ids"[^>]*>([^<]*)<', form.text).group(1)
    assert box.split() == [c[1], c[2], c[3], c[4]]
    assert "结算对账差异 结果.csv" in form.text
    assert "<td>-0.04</td>" in r.text  # amount difference agency − ours: 999.99 − 1,000.03


def test_documented_chinese_mapping_yuan_to_fen(world) -> None:
    app, c = world
    lines = ["结算清单号,病种编码,结算分值,支付金额（元）,说明"]
    for i in range(6):
        yuan = f"{(100_000 + i) / 100:.2f}"
        lines.append(f"{c[i]},G{i},{100 + i}.5,{yuan},")
    lines[4] = f"{c[3]},G3,103.5,1000.04,"  # 1 fen more
    lines.append("BAD\u200b2,G1,1.5,1x,")  # set aside: the reasons name the file's columns
    r = _post(login(app, "h1"), "\n".join(lines) + "\n", "agency_cn")
    assert r.status_code == 200, r.text
    assert _found(r.text) == {c[3]: "金额不一致"}
    assert "第 8 行：结算清单号：含不可见或控制字符" in r.text
    assert "支付金额（元）：须为数字（元）" in r.text


def test_missing_column_and_other_hospital(world) -> None:
    app, c = world
    r = _post(login(app, "h1"), "case_id,group_code\nA,B\n", "opendip")
    assert r.status_code == 422 and "缺少列：settled_score、dip_amount_fen" in r.text
    # H002 compares against its own results only: H001's cases are not listed as its own
    lines = ["case_id,group_code,settled_score,dip_amount_fen", f"{c[0]},G0,100.5,100000"]
    r = _post(login(app, "h2"), "\n".join(lines) + "\n", "opendip")
    assert r.status_code == 200
    assert _found(r.text) == {c[0]: "经办机构有、本平台无"}
    assert "本平台说明0" not in r.text


def test_duplicate_ids_and_unreadable_files_are_4xx_never_500(world) -> None:
    app, c = world
    h1 = login(app, "h1")
    lines = ["case_id,group_code,settled_score,dip_amount_fen"]
    lines += [f"{c[i]},G{i},{100 + i}.5,{100_000 + i}" for i in range(6)]
    lines.append(f"{c[0]},GX,1,1")  # the same case again: set aside, the first row counts
    r = _post(h1, "\n".join(lines) + "\n", "opendip")
    assert r.status_code == 200 and _found(r.text) == {}
    assert "第 8 行：case_id：与前面的行重复" in r.text
    for name, body in (
        ("x.xlsx", b"not a zip"),
        ("x.parquet", b"PAR1junk"),
        ("x.csv", b"\xff\xfe\x00garbage\x81"),
        ("x.txt", b"a,b"),
        ("x.csv", b""),
    ):
        r = h1.post(
            "/reconcile",
            data={"format": "opendip"},
            files={"file": (name, io.BytesIO(body), "application/octet-stream")},
        )
        assert r.status_code == 422, (name, r.status_code)
        assert "alert error" in r.text
    r = h1.post("/reconcile", data={"format": "nope"}, files={"file": ("a.csv", b"a\n1\n")})
    assert r.status_code == 422 and "不支持的格式" in r.text


def test_xlsx_in_the_chinese_mapping(world) -> None:
    from openpyxl import Workbook

    app, c = world
    wb = Workbook()
    ws = wb.active
    ws.append(["结算清单号", "病种编码", "结算分值", "支付金额（元）"])
    for i in range(6):
        ws.append([c[i], f"G{i}" if i != 2 else "GZ", float(f"{100 + i}.5"), (100_000 + i) / 100])
    buf = io.BytesIO()
    wb.save(buf)
    r = login(app, "h1").post(
        "/reconcile",
        data={"format": "agency_cn"},
        files={"file": ("结果.xlsx", io.BytesIO(buf.getvalue()), "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    assert _found(r.text) == {c[2]: "病种不一致"}
