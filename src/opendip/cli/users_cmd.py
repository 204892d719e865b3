"""`opendip users`: accounts of a real region's platform (the first administrator)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from opendip.cli.common import console, fail

app = typer.Typer(help="平台账户 / platform accounts", no_args_is_help=True)


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option("--username", help="管理员用户名")] = "admin",
    data: Annotated[
        Path, typer.Option("--data", help="区域数据目录（opendip serve 的 --data）")
    ] = Path("demo-data"),
    db_url: Annotated[
        str | None,
        typer.Option("--db-url", help="运营数据库 URL", envvar="OPENDIP_DB_URL"),
    ] = None,
    display_name: Annotated[str, typer.Option("--name", help="显示名称")] = "医保局管理员",
) -> None:
    """创建管理员账户（密码从环境变量 OPENDIP_ADMIN_PASSWORD 读取，否则交互输入，至少 8 位）。

    Creates an administrator in the platform's store; the password never appears on the
    command line (environment variable or prompt). Audited as `user.create`.
    """
    from opendip.store import Store, StoreError, sqlite_url
    from opendip.store import repositories as repo
    from opendip.store.passwords import MIN_PASSWORD_LENGTH, WeakPasswordError

    if not data.is_dir():
        fail(f"区域数据目录不存在：{data}")
    password = os.environ.get("OPENDIP_ADMIN_PASSWORD") or typer.prompt(
        f"管理员 {username} 的密码（至少 {MIN_PASSWORD_LENGTH} 位）",
        hide_input=True,
        confirmation_prompt=True,
    )
    try:
        store = Store(db_url or sqlite_url(data))
    except StoreError as exc:
        fail(str(exc))
    try:
        with store.session() as s:
            user = repo.create_user(s, username, password, "admin", display_name)
            repo.audit(
                s, None, "user.create", "user", user.id, {"username": username, "role": "admin"}
            )
            s.commit()
    except (repo.StoreRuleError, WeakPasswordError) as exc:
        fail(str(exc))
    finally:
        store.dispose()
    console.print(f"已创建管理员 {username}；用它登录后在“用户管理”中创建其他账户")


ROLE_HELP = (
    "角色：admin 医保局管理员、agency 医保局经办、hospital 医院用户、expert 评审专家、"
    "health 卫健部门（只读）、finance 财政部门（只读）"
)


@app.command("create")
def create(
    username: Annotated[str, typer.Option("--username", help="用户名")],
    role: Annotated[str, typer.Option("--role", help=ROLE_HELP)],
    data: Annotated[
        Path, typer.Option("--data", help="区域数据目录（opendip serve 的 --data）")
    ] = Path("demo-data"),
    db_url: Annotated[
        str | None,
        typer.Option("--db-url", help="运营数据库 URL", envvar="OPENDIP_DB_URL"),
    ] = None,
    display_name: Annotated[str, typer.Option("--name", help="显示名称")] = "",
    hospital: Annotated[
        str | None, typer.Option("--hospital", help="所属医疗机构代码（医院用户）")
    ] = None,
    county: Annotated[
        str | None,
        typer.Option("--county", help="限定区县（医保局经办 → 县区经办；须在医疗机构名录中）"),
    ] = None,
    department: Annotated[
        str | None, typer.Option("--department", help="限定科室（医院用户 → 科主任）")
    ] = None,
    doctor: Annotated[
        str | None, typer.Option("--doctor", help="主诊医师代码（医院用户 → 医师）")
    ] = None,
) -> None:
    """创建任一角色的账户，可限定数据范围（县区、科室、主诊医师）；密码从环境变量
    OPENDIP_USER_PASSWORD 读取，否则交互输入（至少 8 位）。

    Scopes: docs/platform.md (角色与数据范围). Audited as `user.create` with the scope.
    """
    import pyarrow.parquet as pq

    from opendip.store import Store, StoreError, sqlite_url
    from opendip.store import repositories as repo
    from opendip.store.passwords import MIN_PASSWORD_LENGTH, WeakPasswordError

    if not data.is_dir():
        fail(f"区域数据目录不存在：{data}")
    if county:
        registry = data / "hospitals.parquet"
        known = (
            set(pq.read_table(registry, columns=["county"]).column(0).to_pylist())
            if registry.is_file()
            else set()
        )
        if county not in known:
            fail(f"区县 {county} 不在医疗机构名录中（已有：{'、'.join(sorted(known)) or '无'}）")
    password = os.environ.get("OPENDIP_USER_PASSWORD") or typer.prompt(
        f"用户 {username} 的密码（至少 {MIN_PASSWORD_LENGTH} 位）",
        hide_input=True,
        confirmation_prompt=True,
    )
    try:
        store = Store(db_url or sqlite_url(data))
    except StoreError as exc:
        fail(str(exc))
    try:
        with store.session() as s:
            user = repo.create_user(
                s,
                username,
                password,
                role,
                display_name,
                hospital,
                county=county,
                department=department,
                doctor_id=doctor,
            )
            repo.audit(
                s,
                None,
                "user.create",
                "user",
                user.id,
                {
                    "username": username,
                    "role": role,
                    "hospital_id": user.hospital_id,
                    "county": user.county,
                    "department": user.department,
                    "doctor_id": user.doctor_id,
                },
            )
            s.commit()
            label = user.scope_label
    except (repo.StoreRuleError, WeakPasswordError) as exc:
        fail(str(exc))
    finally:
        store.dispose()
    console.print(f"已创建用户 {username}（{label}）")
