"""opendip.store.access, the one access filter, role by role: which hospital a user's case
data is limited to, and which applications and uploads each role's filter lets through
(on SQLite and PostgreSQL, through the `store` fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opendip.store import Store, Upload, access
from opendip.store import repositories as repo
from opendip.workflow import Actor, Deadlines

ADMIN = Actor(1, "admin")
AGENCY = Actor(2, "agency")
H1 = Actor(3, "hospital", "H001")
H2 = Actor(4, "hospital", "H002")
HOSPITAL_WITHOUT_ID = Actor(5, "hospital", None)
EXPERT = Actor(6, "expert")
UNKNOWN = Actor(7, "auditor", "H001")


def test_region_roles():
    assert frozenset({"admin", "agency"}) == access.REGION_ROLES
    assert access.is_region(ADMIN) and access.is_region(AGENCY)
    assert not any(access.is_region(a) for a in (H1, EXPERT, UNKNOWN, HOSPITAL_WITHOUT_ID))


def test_hospital_scope():
    assert access.hospital_scope(ADMIN) is None
    assert access.hospital_scope(AGENCY) is None
    assert access.hospital_scope(H1) == "H001"
    assert access.hospital_scope(H2) == "H002"
    for actor in (EXPERT, UNKNOWN, HOSPITAL_WITHOUT_ID):
        with pytest.raises(access.NoCaseAccess) as exc:
            access.hospital_scope(actor)
        assert str(exc.value) == "无权查看病例数据"


def test_case_scope_pins_hospitals_and_passes_region_requests():
    assert access.case_scope(AGENCY, "H002") == "H002"
    assert access.case_scope(ADMIN, None) is None
    assert access.case_scope(AGENCY, "") is None  # blank: whole region
    assert access.case_scope(H1, None) == "H001"
    assert access.case_scope(H1, "H002") == "H001"  # pinned, whatever it asks for
    with pytest.raises(access.NoCaseAccess):
        access.case_scope(EXPERT, "H001")


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
    }
    from opendip.store import Application

    apps = {
        "agency": {"a1", "a2"}, "admin": {"a1", "a2"}, "h1": {"a1"}, "h2": {"a2"},
        "expert": {"a2"}, "other_expert": set(), "no_id": set(), "stray": set(),
    }  # fmt: skip
    uploads = {
        "agency": {"a.csv", "b.csv", "region.csv"}, "admin": {"a.csv", "b.csv", "region.csv"},
        "h1": {"a.csv"}, "h2": {"b.csv"}, "expert": set(), "other_expert": set(), "no_id": set(),
        "stray": set(),
    }  # fmt: skip
    names = {ids["a1"]: "a1", ids["a2"]: "a2"}
    with store.session() as s:
        for who, actor in actors.items():
            got = s.scalars(select(Application.id).where(access.application_filter(actor)))
            assert {names[i] for i in got} == apps[who], who
            got = s.scalars(select(Upload.filename).where(access.upload_filter(actor)))
            assert set(got) == uploads[who], who
