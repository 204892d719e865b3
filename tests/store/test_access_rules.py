"""opendip.store.access, the one access filter, role by role: which hospital a user's case
data is limited to, and which applications and uploads each role's filter lets through
(on SQLite and PostgreSQL, through the `store` fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opendip.store import Store, SupervisionLead, Upload, access
from opendip.store import repositories as repo
from opendip.workflow import Actor, Deadlines

ADMIN = Actor(1, "admin")
AGENCY = Actor(2, "agency")
H1 = Actor(3, "hospital", "H001")
H2 = Actor(4, "hospital", "H002")
HOSPITAL_WITHOUT_ID = Actor(5, "hospital", None)
EXPERT = Actor(6, "expert")
UNKNOWN = Actor(7, "auditor", "H001")
COUNTY = Actor(8, "agency", county="城关区", county_hospitals=frozenset({"H001", "H009"}))
NOWHERE = Actor(9, "agency", county="无此县", county_hospitals=frozenset())
DEPT = Actor(10, "hospital", "H001", department="骨科")
DOCTOR = Actor(11, "hospital", "H001", doctor_id="H001-D24-01")
HEALTH = Actor(12, "health")
FINANCE = Actor(13, "finance")


def test_kinds():
    got = [access.kind(a) for a in (ADMIN, AGENCY, COUNTY, H1, DEPT, DOCTOR, EXPERT, HEALTH)]
    assert got == [
        "admin", "agency", "county", "hospital", "department", "doctor", "expert", "health"
    ]  # fmt: skip
    assert access.is_readonly(HEALTH) and access.is_readonly(FINANCE)
    assert not any(access.is_readonly(a) for a in (ADMIN, AGENCY, COUNTY, H1, DEPT, EXPERT))


def test_region_roles():
    assert frozenset({"admin", "agency"}) == access.REGION_ROLES
    assert access.is_region(ADMIN) and access.is_region(AGENCY)
    assert not any(access.is_region(a) for a in (H1, EXPERT, UNKNOWN, HOSPITAL_WITHOUT_ID))
    # a county user is an agency user, but not the whole region
    assert not any(access.is_region(a) for a in (COUNTY, NOWHERE, DEPT, HEALTH, FINANCE))


def test_hospital_scope():
    assert access.hospital_scope(ADMIN) is None
    assert access.hospital_scope(AGENCY) is None
    assert access.hospital_scope(H1) == "H001"
    assert access.hospital_scope(H2) == "H002"
    for actor in (EXPERT, UNKNOWN, HEALTH, FINANCE):
        with pytest.raises(access.NoCaseAccess) as exc:
            access.hospital_scope(actor)
        assert str(exc.value) == "无权查看病例数据"
    # county users and hospital sub-roles see cases but import nothing
    for actor in (COUNTY, DEPT, DOCTOR, HOSPITAL_WITHOUT_ID):
        with pytest.raises(access.NoCaseAccess) as exc:
            access.hospital_scope(actor)
        assert str(exc.value) == "该账户只能查看本范围的病例，不能导入数据"


def test_case_scope_pins_hospitals_and_passes_region_requests():
    S = access.CaseScope
    assert access.case_scope(AGENCY, "H002") == S(hospital_id="H002")
    assert access.case_scope(ADMIN, None) == S()
    assert access.case_scope(AGENCY, "") == S()  # blank: whole region
    assert access.case_scope(H1, None) == S(hospital_id="H001")
    assert access.case_scope(H1, "H002") == S(hospital_id="H001")  # pinned, whatever it asks
    # an expert, or a role the table does not know even with a hospital id: no case rows
    for actor in (EXPERT, UNKNOWN):
        with pytest.raises(access.NoCaseAccess) as exc:
            access.case_scope(actor, "H001")
        assert str(exc.value) == "无权查看病例数据"
    for actor in (HEALTH, FINANCE):
        with pytest.raises(access.NoCaseAccess):
            access.case_scope(actor, None)
        assert access.dashboard_scope(actor) == S()  # region aggregates, never rows


def test_scoped_roles_case_scope():
    S = access.CaseScope
    county = frozenset({"H001", "H009"})
    assert access.case_scope(COUNTY, None) == S(hospitals=county)
    assert access.case_scope(COUNTY, "H002") == S(hospital_id="H002", hospitals=county)
    assert access.case_scope(NOWHERE, None) == S(hospitals=frozenset())
    assert access.case_scope(DEPT, "H002") == S(hospital_id="H001", department="骨科")
    assert access.case_scope(DOCTOR, None) == S(hospital_id="H001", doctor_id="H001-D24-01")
    # the home page's aggregates: everyone else sees its own case scope, asking for nothing
    assert access.dashboard_scope(ADMIN) == S()
    assert access.dashboard_scope(COUNTY) == S(hospitals=county)
    assert access.dashboard_scope(DEPT) == S(hospital_id="H001", department="骨科")
    with pytest.raises(access.NoCaseAccess):
        access.dashboard_scope(EXPERT)


ROWS = [
    {"case_id": "C1", "hospital_id": "H001", "department": "骨科", "doctor_id": "H001-D24-01"},
    {"case_id": "C2", "hospital_id": "H001", "department": "骨科", "doctor_id": "H001-D24-02"},
    {"case_id": "C3", "hospital_id": "H001", "department": "产科", "doctor_id": "H001-D01-01"},
    {"case_id": "C4", "hospital_id": "H009", "department": "骨科", "doctor_id": "H009-D24-01"},
    {"case_id": "C5", "hospital_id": "H002", "department": "骨科", "doctor_id": "H002-D24-01"},
    {"case_id": "C6", "hospital_id": "H001", "department": None, "doctor_id": None},
]


@pytest.mark.parametrize(
    ("actor", "requested", "expected"),
    [
        (AGENCY, None, {"C1", "C2", "C3", "C4", "C5", "C6"}),
        (COUNTY, None, {"C1", "C2", "C3", "C4", "C6"}),
        (COUNTY, "H009", {"C4"}),
        (COUNTY, "H002", set()),  # another county's hospital: nothing
        (NOWHERE, None, set()),
        (H1, "H002", {"C1", "C2", "C3", "C6"}),
        (DEPT, None, {"C1", "C2"}),
        (DOCTOR, None, {"C1"}),
    ],
)
def test_case_scope_filters_rows_and_tables_alike(actor, requested, expected):
    """The same scope on Python rows (in-stay pushes) and on an Ibis table (case lists)."""
    import ibis

    scope = access.case_scope(actor, requested)
    assert {r["case_id"] for r in ROWS if scope.allows(r)} == expected
    table = ibis.memtable(
        ROWS,
        schema={"case_id": "string", "hospital_id": "string", "department": "string",
                "doctor_id": "string"},
    )  # fmt: skip
    got = scope.filter(table).select("case_id").to_pyarrow().column(0).to_pylist()
    assert set(got) == expected


def test_requested_hospital_refuses_another_hospital():
    assert access.requested_hospital(AGENCY, "H002") == "H002"
    assert access.requested_hospital(AGENCY, None) is None
    assert access.requested_hospital(AGENCY, "") is None
    assert access.requested_hospital(H1, None) == "H001"
    assert access.requested_hospital(H1, "") == "H001"
    assert access.requested_hospital(H1, "H001") == "H001"
    with pytest.raises(access.OtherHospital) as exc:
        access.requested_hospital(H1, "H002")
    assert exc.value.args == ("H002",)
    with pytest.raises(access.NoCaseAccess):
        access.requested_hospital(EXPERT, None)
    # county users choose within their county; sub-roles are pinned like the office
    assert access.requested_hospital(COUNTY, "H009") == "H009"
    assert access.requested_hospital(COUNTY, None) is None
    with pytest.raises(access.OtherHospital) as exc:
        access.requested_hospital(COUNTY, "H002")
    assert exc.value.args == ("H002",)
    with pytest.raises(access.OtherHospital):
        access.requested_hospital(NOWHERE, "H001")
    assert access.requested_hospital(DOCTOR, None) == "H001"
    with pytest.raises(access.OtherHospital):
        access.requested_hospital(DEPT, "H002")


D = Deadlines(accept=5, assign=5, review=10, feedback=5)


def _seed(store: Store) -> dict[str, int]:
    """Two hospitals' applications (one assigned to an expert) and uploads."""
    with store.session() as s:
        users = {
            "agency": repo.create_user(s, "agency", "password-1", "agency"),
            "h1": repo.create_user(s, "h1", "password-1", "hospital", hospital_id="H001"),
            "h2": repo.create_user(s, "h2", "password-1", "hospital", hospital_id="H002"),
            "expert": repo.create_user(s, "expert", "password-1", "expert"),
        }
        ids = {k: u.id for k, u in users.items()}
        a1 = repo.create_application(s, users["h1"], "dispute", "t", "r", ["C1"], D)
        a2 = repo.create_application(s, users["h2"], "dispute", "t", "r", ["C2"], D)
        a2.expert_id = ids["expert"]
        ids |= {"a1": a1.id, "a2": a2.id}
        for hid, name in (("H001", "a.csv"), ("H002", "b.csv"), (None, "region.csv")):
            s.add(
                Upload(
                    hospital_id=hid, filename=name, stored_path="", size_bytes=1,
                    sha256=name, uploaded_by=ids["agency"], status="imported",
                )
            )  # fmt: skip
        for hid in ("H001", "H002"):
            s.add(SupervisionLead(hospital_id=hid, rule="r", title="t", case_ids=[], evidence={}))
    return ids


def test_filters_on_the_database(store: Store):
    ids = _seed(store)
    actors = {
        "agency": Actor(ids["agency"], "agency"),
        "admin": Actor(99, "admin"),
        "h1": Actor(ids["h1"], "hospital", "H001"),
        "h2": Actor(ids["h2"], "hospital", "H002"),
        "expert": Actor(ids["expert"], "expert"),
        "other_expert": Actor(98, "expert"),
        "no_id": Actor(97, "hospital", None),
        "stray": Actor(96, "auditor", "H001"),  # unknown role with a hospital: nothing
        "county": COUNTY,  # 城关区: H001 (and H009)
        "county2": Actor(95, "agency", county="东城区", county_hospitals=frozenset({"H002"})),
        "nowhere": NOWHERE,
        "dept": DEPT,
        "doctor": DOCTOR,
        "health": HEALTH,
        "finance": FINANCE,
    }
    from opendip.store import Application

    apps = {
        "agency": {"a1", "a2"}, "admin": {"a1", "a2"}, "h1": {"a1"}, "h2": {"a2"},
        "expert": {"a2"}, "other_expert": set(), "no_id": set(), "stray": set(),
        "county": {"a1"}, "county2": {"a2"}, "nowhere": set(), "dept": set(), "doctor": set(),
        "health": set(), "finance": set(),
    }  # fmt: skip
    uploads = {
        "agency": {"a.csv", "b.csv", "region.csv"}, "admin": {"a.csv", "b.csv", "region.csv"},
        "h1": {"a.csv"}, "h2": {"b.csv"}, "expert": set(), "other_expert": set(), "no_id": set(),
        "stray": set(), "county": {"a.csv"}, "county2": {"b.csv"}, "nowhere": set(),
        "dept": set(), "doctor": set(), "health": set(), "finance": set(),
    }  # fmt: skip
    leads = {
        "agency": {"H001", "H002"}, "admin": {"H001", "H002"}, "county": {"H001"},
        "county2": {"H002"},
    }  # fmt: skip
    names = {ids["a1"]: "a1", ids["a2"]: "a2"}
    with store.session() as s:
        for who, actor in actors.items():
            got = s.scalars(select(Application.id).where(access.application_filter(actor)))
            assert {names[i] for i in got} == apps[who], who
            got = s.scalars(select(Upload.filename).where(access.upload_filter(actor)))
            assert set(got) == uploads[who], who
            got = s.scalars(select(SupervisionLead.hospital_id).where(access.lead_filter(actor)))
            assert set(got) == leads.get(who, set()), who


def test_runs_for_read_only_departments():
    """Runs are region-level: the read-only departments see published ones only."""
    from opendip.store import Run

    published, finished = Run(status="published"), Run(status="succeeded")
    for actor in (ADMIN, AGENCY):
        assert access.run_visible(actor, published) and access.run_visible(actor, finished)
    for actor in (HEALTH, FINANCE):
        assert access.run_visible(actor, published) and not access.run_visible(actor, finished)
    for actor in (COUNTY, H1, DEPT, DOCTOR, EXPERT):
        assert not access.run_visible(actor, published)
