"""方案测算 and 意见征集 on the platform: validated form, background scenario, publish,
hospital sees only its own impact and comments, agency replies and adopts (new dated policy
file, old kept, audited)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendip.policy import PolicyFile
from opendip.store import repositories as repo


@pytest.fixture
def annual(app, clients):
    agency = clients("agency")
    with app.state.store.session() as s:
        user = next(u for u in repo.list_users(s) if u.username == "agency")
        run = app.state.runs.start(s, user, "annual", "2026")
    with app.state.store.session() as s:
        from opendip.store import Run

        assert s.get(Run, run.id).status == "succeeded", s.get(Run, run.id).message
    return agency


def _create(agency, **fields):
    data = {"title": "二级系数上调", "description": "二级 0.88→0.92", **fields}
    return agency.post("/scenarios", data=data)


def test_proposal_comment_reply_adopt(app, clients, annual, region_dir: Path):
    agency = annual
    page = agency.get("/scenarios")
    assert page.status_code == 200 and "二级医疗机构系数" in page.text
    # Validated as the policy is: the error names the key path.
    bad = _create(agency, **{"field__settlement.reserve_share": "1.5"})
    assert bad.status_code == 422
    assert "settlement.reserve_share" in bad.text and "必须小于或等于 1" in bad.text
    nothing = _create(agency)
    assert nothing.status_code == 422 and "没有改变任何参数" in nothing.text

    r = _create(agency, **{"field__scoring.hospital_coefficient.levels.secondary": "0.92"})
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    detail = agency.get(url)
    assert "测算完成" in detail.text and "区域汇总" in detail.text
    assert agency.get(url + "/export.xlsx").content[:2] == b"PK"
    pdf = agency.get(url + "/export.pdf")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"

    h1, h2 = clients("h1"), clients("h2")
    assert h1.get(url).status_code == 404  # not published yet
    assert agency.post(url, data={"action": "publish"}).status_code == 303
    mine = h1.get(url)
    assert mine.status_code == 200 and "本院在该方案下的结算变化" in mine.text
    assert "H001" in mine.text and "H002 " not in mine.text
    assert (
        h1.post(url, data={"action": "comment", "body": "二级系数调整对本院有利，赞成"}).status_code
        == 303
    )
    assert h1.post(url, data={"action": "publish"}).status_code == 403
    assert "赞成" not in h2.get(url).text  # another hospital's comment is not shown

    seen = agency.get(url)
    assert "赞成" in seen.text
    from opendip.store.models import ProposalComment

    with app.state.store.session() as s:
        cid = s.query(ProposalComment).one().id
    assert (
        agency.post(url, data={"action": "reply", "comment_id": cid, "body": "已收悉"}).status_code
        == 303
    )
    assert "已收悉" in h1.get(url).text

    before = sorted(p.name for p in region_dir.rglob("*.yaml"))
    assert agency.post(url, data={"action": "adopt"}).status_code == 303
    done = agency.get(url)
    assert "已采纳" in done.text
    new = [p for p in (region_dir / "policies").glob("*-adopted-*.yaml")]
    assert len(new) == 1
    adopted = PolicyFile.read(new[0]).at()
    assert str(adopted.scoring.hospital_coefficient.levels["secondary"]) == "0.92"
    assert adopted.version.endswith("-方案1")
    assert set(before) <= {p.name for p in region_dir.rglob("*.yaml")}  # old kept
    with app.state.store.session() as s:
        actions = [e.action for e in repo.audit_entries(s, limit=50)[0]]
    for a in ("proposal.create", "proposal.publish", "proposal.comment", "proposal.reply",
              "proposal.adopt"):  # fmt: skip
        assert a in actions
    assert h1.post(url, data={"action": "comment", "body": "晚了"}).status_code == 409


def test_compare_and_access(app, clients, annual):
    agency = annual
    for title, value in (("方案甲", "0.9"), ("方案乙", "0.95")):
        r = agency.post(
            "/scenarios",
            data={"title": title, "field__scoring.hospital_coefficient.levels.secondary": value},
        )
        assert r.status_code == 303
    page = agency.get("/scenarios/compare?id=1&id=2")
    assert page.status_code == 200 and "方案甲" in page.text and "方案乙" in page.text
    assert clients("h1").get("/scenarios/compare?id=1").status_code == 403
    assert clients("expert").get("/scenarios").status_code == 403
    assert clients("h1").post("/scenarios", data={"title": "x"}).status_code == 403
