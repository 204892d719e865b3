"""The operational store on SQLite and PostgreSQL: migrations, users, login lockout,
sessions, the application workflow with optimistic concurrency, special-review output."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select

from opendip.store import Application, AuditEntry, Store, utcnow
from opendip.store import repositories as repo
from opendip.store.models import SupervisionLead
from opendip.store.passwords import WeakPasswordError, hash_password, verify_password
from opendip.workflow import Actor, CaseDecision, Deadlines, IllegalTransition, InvalidDecision

D = Deadlines(accept=5, assign=5, review=10, feedback=5)
MONDAY = dt.date(2026, 3, 2)


def _users(store: Store) -> dict[str, int]:
    with store.session() as s:
        ids = {
            "agency": repo.create_user(s, "agency", "password-1", "agency").id,
            "h1": repo.create_user(s, "h1", "password-1", "hospital", hospital_id="H001").id,
            "h2": repo.create_user(s, "h2", "password-1", "hospital", hospital_id="H002").id,
            "expert": repo.create_user(s, "expert", "password-1", "expert").id,
            "expert2": repo.create_user(s, "expert2", "password-1", "expert").id,
        }
    return ids


def _user(s, uid):
    return repo.get_user(s, uid)


def test_migration_creates_every_table(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    assert {
        "users",
        "login_sessions",
        "runs",
        "uploads",
        "applications",
        "application_events",
        "decisions",
        "attachments",
        "supervision_leads",
        "audit_log",
        "alembic_version",
    } <= names
    # migrating twice is a no-op
    from opendip.store import migrate

    migrate(store.engine)


def test_passwords_are_argon2() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")
    assert not verify_password("not-a-hash", "x")
    with pytest.raises(WeakPasswordError):
        hash_password("short")


def test_user_rules(store: Store) -> None:
    with store.session() as s:
        repo.create_user(s, "a", "password-1", "agency")
    bad = [
        (("a", "password-1", "agency"), {}, "已存在"),
        (("b", "password-1", "boss"), {}, "未知角色"),
        (("c", "password-1", "hospital"), {}, "必须指定"),
        (("d", "password-1", "agency"), {"hospital_id": "H1"}, "只有医院用户"),
        (("", "password-1", "agency"), {}, "1–64"),
    ]
    for args, kwargs, msg in bad:
        with store.session() as s, pytest.raises(repo.StoreRuleError, match=msg):
            repo.create_user(s, *args, **kwargs)


def test_lockout_after_n_failures_then_expiry(store: Store) -> None:
    _users(store)
    now = utcnow()
    for _ in range(3):
        with store.session() as s, pytest.raises(repo.LoginRefused, match="用户名或密码错误"):
            repo.check_login(s, "agency", "nope", 3, dt.timedelta(minutes=15), now)
    with store.session() as s:
        assert repo.user_by_name(s, "agency").locked_until is not None
    # even the right password is refused while locked
    with store.session() as s, pytest.raises(repo.LoginRefused, match="已锁定"):
        repo.check_login(s, "agency", "password-1", 3, dt.timedelta(minutes=15), now)
    later = now + dt.timedelta(minutes=16)
    with store.session() as s:
        user = repo.check_login(s, "agency", "password-1", 3, dt.timedelta(minutes=15), later)
        assert user.failed_logins == 0 and user.locked_until is None
    with store.session() as s, pytest.raises(repo.LoginRefused, match="用户名或密码错误"):
        repo.check_login(s, "nobody", "x", 3, dt.timedelta(minutes=15))
    with store.session() as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "user.locked" in actions


def test_sessions_expire_and_idle_out(store: Store) -> None:
    ids = _users(store)
    with store.session() as s:
        token, row = repo.create_session(s, _user(s, ids["h1"]), dt.timedelta(hours=1))
    assert len(token) > 30 and row.id_hash != token  # only the hash is stored
    with store.session() as s:
        assert repo.find_session(s, token, dt.timedelta(minutes=30)) is not None
        assert repo.find_session(s, "forged", dt.timedelta(minutes=30)) is None
    with store.session() as s:
        assert (
            repo.find_session(
                s, token, dt.timedelta(minutes=30), utcnow() + dt.timedelta(minutes=31)
            )
            is None
        )
    with store.session() as s:  # idle-expired session was deleted
        assert repo.find_session(s, token, dt.timedelta(minutes=30)) is None
    with store.session() as s:
        token2, _ = repo.create_session(s, _user(s, ids["h1"]), dt.timedelta(minutes=5))
    with store.session() as s:
        assert (
            repo.find_session(s, token2, dt.timedelta(hours=1), utcnow() + dt.timedelta(minutes=6))
            is None
        )


def _flow_to_reviewing(store: Store, ids: dict[str, int], kind: str = "special_review") -> int:
    with store.session() as s:
        app = repo.create_application(
            s, _user(s, ids["h1"]), kind, "高倍率病例", "费用合理", ["C1", "C2"], D, today=MONDAY
        )
        app_id = app.id
        assert app.deadline == dt.date(2026, 3, 9)
    with store.session() as s:
        repo.transition(s, _user(s, ids["agency"]), app_id, "accept", 1, D, today=MONDAY)
    with store.session() as s:
        a = repo.transition(
            s,
            _user(s, ids["agency"]),
            app_id,
            "assign",
            2,
            D,
            expert_id=ids["expert"],
            today=MONDAY,
        )
        assert a.state == "reviewing" and a.deadline == dt.date(2026, 3, 16)
    return app_id


def test_full_flow_and_special_review_output(store: Store) -> None:
    ids = _users(store)
    app_id = _flow_to_reviewing(store, ids)
    decisions = [CaseDecision("C1", "accept", Decimal("120.5")), CaseDecision("C2", "reject", None)]
    with store.session() as s:
        a = repo.transition(s, _user(s, ids["expert"]), app_id, "decide", 3, D, decisions=decisions)
        assert a.state == "feedback"
    with store.session() as s:
        assert repo.final_special_reviews(s) == []  # not archived yet
        a = repo.transition(s, _user(s, ids["agency"]), app_id, "archive", 4, D)
        assert (a.state, a.outcome, a.version) == ("archived", "partly_upheld", 5)
        assert a.closed_at is not None and a.deadline is None
    with store.session() as s:
        assert repo.final_special_reviews(s) == [
            ("C1", "accept", Decimal("120.5")),
            ("C2", "reject", None),
        ]
        app = repo.get_application(s, Actor(ids["h1"], "hospital", "H001"), app_id)
        assert [e.action for e in app.events] == ["submit", "accept", "assign", "decide", "archive"]
        audit = s.scalars(
            select(AuditEntry.action).where(AuditEntry.object_id == str(app_id))
        ).all()
        assert audit == [
            "application.submit",
            "application.accept",
            "application.assign",
            "application.decide",
            "application.archive",
        ]


def test_object_sends_back_to_review_and_replaces_decisions(store: Store) -> None:
    ids = _users(store)
    app_id = _flow_to_reviewing(store, ids, "dispute")
    with store.session() as s:
        repo.transition(
            s,
            _user(s, ids["expert"]),
            app_id,
            "decide",
            3,
            D,
            decisions=[CaseDecision("C1", "reject", None), CaseDecision("C2", "reject", None)],
        )
    with store.session() as s:
        repo.transition(s, _user(s, ids["h1"]), app_id, "object", 4, D, comment="请复核")
    with store.session() as s:
        a = repo.transition(
            s,
            _user(s, ids["expert"]),
            app_id,
            "decide",
            5,
            D,
            decisions=[
                CaseDecision("C1", "accept", None),
                CaseDecision("C2", "accept", Decimal(3)),
            ],
        )
        assert [d.decision for d in a.decisions] == ["accept", "accept"]
    with store.session() as s:
        a = repo.transition(s, _user(s, ids["agency"]), app_id, "archive", 6, D)
        assert a.outcome == "upheld"
        assert repo.final_special_reviews(s) == []  # disputes do not feed special review


def test_refusals(store: Store) -> None:
    ids = _users(store)
    app_id = _flow_to_reviewing(store, ids)
    with store.session() as s, pytest.raises(IllegalTransition, match="不能执行"):
        repo.transition(s, _user(s, ids["agency"]), app_id, "accept", 3, D)
    with store.session() as s, pytest.raises(repo.NotFoundError):  # other hospital: not visible
        repo.transition(s, _user(s, ids["h2"]), app_id, "withdraw", 3, D)
    with store.session() as s, pytest.raises(repo.NotFoundError):  # unassigned expert
        repo.transition(s, _user(s, ids["expert2"]), app_id, "decide", 3, D)
    with store.session() as s, pytest.raises(InvalidDecision):
        repo.transition(s, _user(s, ids["expert"]), app_id, "decide", 3, D, decisions=[])
    with store.session() as s, pytest.raises(IllegalTransition, match="有效的评审专家"):
        repo.transition(s, _user(s, ids["agency"]), app_id, "reassign", 3, D, expert_id=ids["h1"])
    with store.session() as s, pytest.raises(repo.ConcurrentUpdateError):  # stale form
        repo.transition(
            s, _user(s, ids["agency"]), app_id, "reassign", 1, D, expert_id=ids["expert2"]
        )
    with store.session() as s:
        assert s.get(Application, app_id).version == 3  # nothing changed


def test_application_input_rules(store: Store) -> None:
    ids = _users(store)
    for args, msg in (
        (("special_review", "", "r", ["C1"]), "标题"),
        (("special_review", "t", " ", ["C1"]), "理由"),
        (("special_review", "t", "r", [" "]), "至少填写"),
        (("other", "t", "r", ["C1"]), "未知申请类型"),
    ):
        with store.session() as s, pytest.raises(repo.StoreRuleError, match=msg):
            repo.create_application(s, _user(s, ids["h1"]), *args, D)
    with store.session() as s, pytest.raises(repo.StoreRuleError, match="只有医院用户"):
        repo.create_application(s, _user(s, ids["expert"]), "dispute", "t", "r", ["C1"], D)


def test_double_submission_files_once(store: Store) -> None:
    ids = _users(store)
    with store.session() as s:
        a = repo.create_application(
            s, _user(s, ids["h1"]), "dispute", "t", "r", ["C1"], D, submit_token="tok-1"
        )
    with store.session() as s:
        b = repo.create_application(
            s, _user(s, ids["h1"]), "dispute", "t", "r", ["C1"], D, submit_token="tok-1"
        )
    assert a.id == b.id
    with store.session() as s:
        assert len(repo.list_applications(s, Actor(ids["agency"], "agency"))) == 1
    with store.session() as s, pytest.raises(repo.StoreRuleError, match="表单已失效"):
        repo.create_application(
            s, _user(s, ids["h2"]), "dispute", "t", "r", ["C1"], D, submit_token="tok-1"
        )


def test_visibility_filters(store: Store) -> None:
    ids = _users(store)
    app_id = _flow_to_reviewing(store, ids)
    with store.session() as s:
        assert repo.get_application(s, Actor(ids["h2"], "hospital", "H002"), app_id) is None
        assert repo.get_application(s, Actor(ids["expert2"], "expert"), app_id) is None
        assert repo.get_application(s, Actor(ids["expert"], "expert"), app_id) is not None
        assert repo.list_applications(s, Actor(ids["h2"], "hospital", "H002")) == []
        assert repo.get_run(s, Actor(ids["h1"], "hospital", "H001"), 1) is None


def test_concurrent_decisions_exactly_one_wins(store: Store) -> None:
    ids = _users(store)
    app_id = _flow_to_reviewing(store, ids)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def decide(decision: str) -> None:
        with store.sessions() as s:
            user = _user(s, ids["expert"])
            repo.get_application(s, Actor(user.id, "expert"), app_id)  # both read version 3
            barrier.wait()
            try:
                repo.transition(
                    s,
                    user,
                    app_id,
                    "decide",
                    3,
                    D,
                    decisions=[
                        CaseDecision("C1", decision, Decimal(5) if decision == "accept" else None),
                        CaseDecision("C2", "reject", None),
                    ],
                )
                s.commit()
                results.append("won")
            except repo.ConcurrentUpdateError:
                s.rollback()
                results.append("lost")

    threads = [threading.Thread(target=decide, args=(d,)) for d in ("accept", "reject")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["lost", "won"]
    with store.session() as s:
        app = s.get(Application, app_id)
        assert app.version == 4 and app.state == "feedback"
        assert len(repo.get_application(s, Actor(ids["agency"], "agency"), app_id).decisions) == 2


def test_runs_approve_then_publish(store: Store) -> None:
    ids = _users(store)
    from opendip.store import Run

    with store.session() as s:
        run = Run(kind="monthly", period="2026-03", status="succeeded", created_by=ids["agency"])
        s.add(run)
    with store.session() as s:
        user = _user(s, ids["agency"])
        run = s.get(Run, run.id)
        with pytest.raises(repo.StoreRuleError, match="不能公示"):
            repo.advance_run(s, user, run, "publish")
        repo.advance_run(s, user, run, "approve")
        repo.advance_run(s, user, run, "publish")
        assert run.status == "published" and run.published_by == user.id
        assert [r.id for r in repo.published_runs(s)] == [run.id]


def test_leads_assign_and_close(store: Store) -> None:
    ids = _users(store)
    with store.session() as s:
        lead = SupervisionLead(
            hospital_id="H001", rule="readmission", title="15 日内再入院", case_ids=["C1", "C2"]
        )
        s.add(lead)
        s.flush()
        lead_id = lead.id
    with store.session() as s:
        user = _user(s, ids["agency"])
        lead = s.get(SupervisionLead, lead_id)
        with pytest.raises(IllegalTransition, match="须先分派"):
            repo.update_lead(s, user, lead, "close", 1, conclusion="x")
        with pytest.raises(IllegalTransition, match="经办人员"):
            repo.update_lead(s, user, lead, "assign", 1, assignee_id=ids["h1"])
        repo.update_lead(s, user, lead, "assign", 1, assignee_id=ids["agency"])
        s.commit()
        with pytest.raises(IllegalTransition, match="核查结论"):
            repo.update_lead(s, user, lead, "close", 2)
        with pytest.raises(repo.ConcurrentUpdateError):
            repo.update_lead(s, user, lead, "close", 1, conclusion="属实")
    with store.session() as s:
        user = _user(s, ids["agency"])
        lead = s.get(SupervisionLead, lead_id)
        repo.update_lead(s, user, lead, "close", 2, conclusion="属实，已追回")
        assert lead.status == "closed" and lead.closed_at is not None


def test_import_supervision_leads_once(store: Store) -> None:
    lead = {
        "lead_id": "RA-P1-C1-C2", "lead_type": "readmission", "type_label": "分解住院/二次入院",
        "hospital_id": "H001", "case_ids": ["C1", "C2"], "evidence": "出院后 3 天再次入院",
        "severity": "high", "score": 9.5, "impact_fen": 123456, "rank_overall": 1,
    }  # fmt: skip
    with store.session() as s:
        assert repo.import_leads(s, [lead]) == 1
    with store.session() as s:
        assert repo.import_leads(s, [lead, lead | {"lead_id": "RA-2"}]) == 1  # the new one only
        rows = s.scalars(select(SupervisionLead).order_by(SupervisionLead.id)).all()
        assert [r.evidence["lead_id"] for r in rows] == ["RA-P1-C1-C2", "RA-2"]
        assert rows[0].case_ids == ["C1", "C2"] and rows[0].status == "open"
        assert rows[0].title == "分解住院/二次入院（H001）"
        assert rows[0].evidence["text"] == "出院后 3 天再次入院"
