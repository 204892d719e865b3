"""`opendip serve`: the web platform on a region directory."""

from __future__ import annotations

import gc
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
        bool | None,
        typer.Option(
            "--demo-accounts/--no-demo-accounts",
            help="首次启动时创建各角色示范账户（默认：仅示范区域，即 opendip demo 的输出）",
        ),
    ] = None,
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Cookie 加 Secure 标志并启用 HSTS（经 HTTPS 反向代理对外服务时必须开启）",
            envvar="OPENDIP_SECURE_COOKIES",
        ),
    ] = False,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="信任反向代理的 X-Forwarded-For/-Proto（仅来自 --forwarded-allow-ips 的代理）",
            envvar="OPENDIP_PROXY_HEADERS",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="可信反向代理地址（逗号分隔）",
            envvar="OPENDIP_FORWARDED_ALLOW_IPS",
        ),
    ] = "127.0.0.1",
) -> None:
    """启动网页平台 / start the web platform.

    A demo region (written by `opendip demo`) gets demo accounts with random passwords; a
    real region gets none: create the first administrator with `opendip users create-admin`.
    Production (TLS proxy, cookies, backups): docs/platform.md, "Running in production".
    """
    import uvicorn

    from opendip.store import StoreError
    from opendip.store import repositories as repo
    from opendip.web import Settings, create_app
    from opendip.web.demo_accounts import demo_scopes, ensure_demo_accounts, is_demo_region
    from opendip.web.demo_frontpages import ensure_demo_front_pages
    from opendip.web.demo_instay import ensure_demo_instay

    if not data.is_dir():
        fail(f"区域数据目录不存在：{data}（先运行 opendip demo --out {data}）")
    settings = Settings(
        data_dir=data, db_url=db_url, policy_path=policy, secure_cookies=secure_cookies
    )
    try:
        app = create_app(settings)
    except StoreError as exc:
        fail(str(exc))
    if demo_accounts is None:
        demo_accounts = is_demo_region(data)
    if demo_accounts:
        hospitals = [h["hospital_id"] for h in app.state.region.hospitals()]
        scopes = demo_scopes(app.state.region, hospitals[0]) if hospitals else {}
        accounts = ensure_demo_accounts(app.state.store, settings.platform_dir, hospitals, scopes)
        pushed = ensure_demo_instay(app, hospitals[:2])
        if pushed:
            console.print(f"示范在院病例：已由院内系统接口推送 {pushed} 例（在院病例页面）")
        front = ensure_demo_front_pages(app, hospitals[:2])
        if front:
            pages = sum(u["pages"] for u in front)
            passed = sum(u["passed"] for u in front)
            rerated = "；信用评价已计入病案首页质控通过率" if front[-1].get("rerated") else ""
            console.print(
                f"示范病案首页：{len(front)} 次上传共 {pages} 份，首页质控通过 {passed} 份"
                f"（数据上传页面{rerated}）"
            )
        if accounts:
            from opendip.store.models import ROLE_LABELS

            table = Table(title="示范账户（仅供演示，请勿用于生产）")
            for col in ("角色与范围", "用户名", "密码", "医疗机构"):
                table.add_column(col)
            for a in accounts:
                scope = a.get("scope") or ROLE_LABELS.get(a["role"], a["role"])
                table.add_row(scope, a["username"], a["password"], a["hospital_id"])
            console.print(table)
    else:
        with app.state.store.session() as s:
            if not repo.list_users(s):
                console.print(
                    "[yellow]尚无任何用户：先运行 opendip users create-admin --data "
                    f"{data} 创建管理员，再由管理员在“用户管理”中创建其他账户[/]"
                )
    from opendip.web.services import warm_pregroup

    # Pre-grouping answers from memory from the first request on; then what lives as long
    # as the server (app, region tables, grouping index) is moved out of the garbage
    # collector's view: a full collection would walk it all (≈ 0.1 s with the test region)
    # while every waiting request stalls (the API's p99, issue 16 §4, docs/benchmarks.md).
    warm_pregroup(app)
    gc.collect()
    gc.freeze()
    scheme = "https" if secure_cookies else "http"
    console.print(
        f"OpenDIP 平台：{scheme}://{host}:{port}/  （API 文档 {scheme}://{host}:{port}/docs）"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        # no per-request access log line (the audit log records what matters); uvicorn
        # takes uvloop and httptools when installed (both are dependencies)
        access_log=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips if proxy_headers else None,
    )
