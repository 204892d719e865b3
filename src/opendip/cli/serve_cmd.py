"""`opendip serve`: the web platform on a region directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opendip.cli.common import console, fail


def serve(
    data: Annotated[
        Path, typer.Option("--data", help="区域数据目录（opendip demo 的输出）")
    ] = Path("demo-data"),
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口")] = 8000,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            help="运营数据库 URL（默认 DATA/platform/opendip.db）",
            envvar="OPENDIP_DB_URL",
        ),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="政策文件（默认示范区域）")
    ] = None,
    demo_accounts: Annotated[
        bool,
        typer.Option("--demo-accounts/--no-demo-accounts", help="首次启动时创建各角色示范账户"),
    ] = True,
) -> None:
    """启动网页平台 / start the web platform."""
    import uvicorn

    from opendip.store import StoreError
    from opendip.web import Settings, create_app
    from opendip.web.demo_accounts import ensure_demo_accounts

    if not data.is_dir():
        fail(f"区域数据目录不存在：{data}（先运行 opendip demo --out {data}）")
    settings = Settings(data_dir=data, db_url=db_url, policy_path=policy)
    try:
        app = create_app(settings)
    except StoreError as exc:
        fail(str(exc))
    if demo_accounts:
        hospitals = [h["hospital_id"] for h in app.state.region.hospitals()]
        accounts = ensure_demo_accounts(app.state.store, settings.platform_dir, hospitals)
        if accounts:
            table = Table(title="示范账户（仅供演示，请勿用于生产）")
            for col in ("角色", "用户名", "密码", "医疗机构"):
                table.add_column(col)
            labels = {
                "admin": "医保局管理员",
                "agency": "医保局经办",
                "hospital": "医院用户",
                "expert": "评审专家",
            }
            for a in accounts:
                table.add_row(labels[a["role"]], a["username"], a["password"], a["hospital_id"])
            console.print(table)
    console.print(f"OpenDIP 平台：http://{host}:{port}/  （API 文档 http://{host}:{port}/docs）")
    uvicorn.run(app, host=host, port=port, log_level="warning")
