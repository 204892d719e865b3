"""Uploading a settlement list: store the file, import it (opendip.ingest), run QC when
the module exists, record counts. Bad files end as a Chinese message, never a 500."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from opendip.ingest.limits import Progress
from opendip.store import Store, Upload, User
from opendip.store import repositories as repo
from opendip.store.access import hospital_scope
from opendip.web.region import RegionData
from opendip.web.settings import Settings

ALLOWED_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls", ".parquet")
SAFE_NAME = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff._-]+")


class UploadRejected(ValueError):
    """The file cannot be accepted at all (size, type, empty)."""


#: Longest stored file name in UTF-8 bytes (file systems allow 255).
MAX_NAME_BYTES = 180


def _cut(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def safe_filename(name: str) -> str:
    """A storable file name: unsafe characters replaced, at most 120 characters and
    `MAX_NAME_BYTES` bytes, and the extension kept however long the name (it decides the
    reader)."""
    base = Path((name or "upload").replace("\\", "/")).name
    cleaned = SAFE_NAME.sub("_", base).strip("._") or "upload"
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot or not stem or len(suffix) > 10:
        return _cut(cleaned[:120], MAX_NAME_BYTES)
    room = min(119 - len(suffix), MAX_NAME_BYTES - 1 - len(suffix.encode("utf-8")))
    return f"{_cut(stem[:room], room)}.{suffix}"


def check_file(filename: str, data: bytes, settings: Settings) -> str:
    name = safe_filename(filename)
    if not data:
        raise UploadRejected("上传的文件为空")
    if len(data) > settings.max_upload_bytes:
        mb = settings.max_upload_bytes / 1024 / 1024
        raise UploadRejected(f"文件过大：{len(data) / 1024 / 1024:.1f} MB，上限 {mb:.0f} MB")
    if not name.lower().endswith(ALLOWED_SUFFIXES):
        raise UploadRejected(
            "不支持的文件类型：请上传 CSV、Excel（.xlsx）或 Parquet 格式的结算清单"
        )
    return name


def qc_available() -> bool:
    return importlib.util.find_spec("opendip.qc") is not None


#: Upload statuses: "importing" while the worker runs (`rows_read` and `message` show its
#: progress), then "imported" or "rejected".
UPLOAD_STATUS_LABELS = {
    "received": "已接收",
    "importing": "正在导入",
    "imported": "已导入",
    "rejected": "已拒收",
}
#: Seconds between two progress writes of one import (the store is not a log).
PROGRESS_INTERVAL = 0.5


def import_upload(
    s: Session,
    settings: Settings,
    user: User,
    filename: str,
    data: bytes,
    region: RegionData | None = None,
) -> tuple[Upload, bool]:
    """Store and import one file in this session; returns (upload, was_duplicate).
    (The platform uses `UploadService`, which imports in a worker with progress.)"""
    upload, duplicate = receive_upload(s, settings, user, filename, data)
    if not duplicate:
        process_upload(s, settings, user, upload, region)
        owner_only(Path(upload.stored_path).parent)
    return upload, duplicate


def owner_only(folder: Path) -> None:
    """An upload's folder and every file the import wrote into it (accepted rows,
    quarantine, errors, QC results) readable by the service's user only."""
    folder.chmod(0o700)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o600)


def receive_upload(
    s: Session, settings: Settings, user: User, filename: str, data: bytes
) -> tuple[Upload, bool]:
    """Check and store one file (status "importing", nothing imported yet); returns
    (upload, was_duplicate): the same bytes as the uploader's latest upload (imported or
    still importing) are not imported again."""
    name = check_file(filename, data, settings)
    digest = hashlib.sha256(data).hexdigest()
    hospital_id = hospital_scope(repo.actor_of(user))
    own = Upload.hospital_id.is_(None) if hospital_id is None else Upload.hospital_id == hospital_id
    previous = s.scalar(
        select(Upload)
        .where(Upload.sha256 == digest, own, Upload.status.in_(("imported", "importing")))
        .order_by(Upload.id.desc())
    )
    if previous is not None:
        later = s.scalar(
            select(Upload.id).where(
                Upload.id > previous.id, Upload.status.in_(("imported", "importing")), own
            )
        )
        if later is None:  # the same file again: nothing changes
            return previous, True
        # the same file after a later upload: import it again, it becomes the latest version
    upload = Upload(
        hospital_id=hospital_id,
        filename=name,
        stored_path="",
        size_bytes=len(data),
        sha256=digest,
        uploaded_by=user.id,
        status="importing",
        message="排队等待导入",
    )
    s.add(upload)
    s.flush()
    folder = settings.platform_dir / "uploads" / str(upload.id)
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    path.write_bytes(data)
    path.chmod(0o600)
    upload.stored_path = str(path)
    return upload, False


def process_upload(
    s: Session,
    settings: Settings,
    user: User,
    upload: Upload,
    region: RegionData | None = None,
    progress: Progress | None = None,
) -> Upload:
    """Import a received upload: read within `settings.import_limits` (`progress` hears the
    rows so far), split accepted/quarantined, run QC, record counts and the audit entry.

    Case identity is (hospital_id, case_id) (see `RegionData.cases_expr`): a hospital's
    rows for another hospital are quarantined, and so are rows whose case id already belongs
    to another hospital (region base data or an earlier upload). Rows for cases the uploader
    already submitted are corrections: this upload becomes their latest version (the
    earlier versions stay in their uploads as history; counted in the audit entry).
    """
    from opendip.ingest import ImportResult, read_cases, write_outputs

    path = Path(upload.stored_path)
    folder, name, hospital_id = path.parent, upload.filename, upload.hospital_id
    if is_front_page_export(path):
        return _process_front_pages(s, user, upload, region)
    try:
        result = read_cases([path], limits=settings.import_limits, progress=progress)
    except Exception as exc:  # the importer should not raise; if it does, say so
        upload.status = "rejected"
        upload.message = f"文件无法解析：{exc}"
        repo.audit(s, user, "upload.rejected", "upload", upload.id, {"file": name})
        return upload
    report = result.files[0]
    upload.encoding = report.encoding
    if result.nothing_read:
        upload.status = "rejected"
        upload.message = report.error or "文件无法读取"
        upload.rows_read = 0
        repo.audit(s, user, "upload.rejected", "upload", upload.id, {"file": name})
        return upload
    if progress is not None:
        progress("校验字段与核对病例归属", result.read)
    if hospital_id is not None:
        result = _only_own_hospital(result, hospital_id, str(path), ImportResult)
    collisions = replaced = 0
    if region is not None and result.accepted.num_rows:
        result, collisions, replaced = _not_others_cases(
            result, region, repo.accepted_upload_files(s), str(path), ImportResult
        )
    paths = write_outputs(result, folder, "cases")
    upload.rows_read = result.read
    upload.rows_accepted = result.accepted.num_rows
    upload.rows_quarantined = result.quarantine.num_rows
    upload.outputs = {k: str(v) for k, v in paths.items()}
    notes = list(report.warnings)
    if collisions:
        notes.append(f"{collisions} 例的结算清单号已属于其他医疗机构，已隔离并提交医保经办机构核查")
    if replaced:
        notes.append(f"{replaced} 例为已提交病例的更正，以本次上传为准（原版本保留备查）")
    if not qc_available():
        notes.append("结算清单质控模块尚未启用：本次仅完成格式与字段校验")
    elif result.accepted.num_rows:
        if progress is not None:
            progress("结算清单质控", result.read)
        notes += _run_qc(upload, result.accepted, folder)
    upload.status = "imported"
    upload.message = "；".join(notes)
    repo.audit(
        s,
        user,
        "upload.imported",
        "upload",
        upload.id,
        {
            "file": name,
            "read": upload.rows_read,
            "accepted": upload.rows_accepted,
            "quarantined": upload.rows_quarantined,
            "replaced": replaced,
            "collisions": collisions,
        },
    )
    if collisions:
        repo.audit(s, user, "upload.case_collision", "upload", upload.id, {"cases": collisions})
    return upload


class UploadService:
    """Imports of uploaded files in worker threads, at most `Settings.parallel_imports` at
    once, never on the event loop (one large file must not stop other requests). Progress
    (step and rows read so far) is written to the upload's row, so the page polls the store
    like a run's page; uploads interrupted by a restart are marked rejected."""

    def __init__(self, store: Store, settings: Settings, region: RegionData) -> None:
        self.store = store
        self.settings = settings
        self.region = region
        self.slots = threading.BoundedSemaphore(max(1, settings.parallel_imports))
        self._threads: dict[int, threading.Thread] = {}

    def recover(self) -> int:
        with self.store.session() as s:
            res = s.execute(
                update(Upload)
                .where(Upload.status.in_(("received", "importing")))
                .values(status="rejected", message="服务重启，导入中断，请重新上传该文件")
            )
            return int(res.rowcount or 0)

    def start(self, upload_id: int, background: bool) -> None:
        """Import the received upload `upload_id` (committed) in a new thread, or in this
        one when `background` is false (the caller is then a worker thread itself)."""
        if not background:
            self.execute(upload_id)
            return
        thread = threading.Thread(
            target=self.execute, args=(upload_id,), name=f"upload-{upload_id}", daemon=True
        )
        self._threads[upload_id] = thread
        thread.start()

    def wait(self, upload_id: int, timeout: float = 120) -> None:
        thread = self._threads.get(upload_id)
        if thread is not None:
            thread.join(timeout)

    def _progress(self, upload_id: int) -> Progress:
        last = [0.0]

        def note(step: str, rows: int) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            with self.store.session() as s:
                s.execute(
                    update(Upload)
                    .where(Upload.id == upload_id, Upload.status == "importing")
                    .values(rows_read=rows, message=step)
                )

        return note

    def execute(self, upload_id: int) -> None:
        note = self._progress(upload_id)
        with self.slots:
            note("开始导入", 0)
            try:
                with self.store.session() as s:
                    upload = s.get(Upload, upload_id)
                    user = s.get(User, upload.uploaded_by) if upload else None
                    if upload is None or user is None or upload.status != "importing":
                        return
                    # nothing is written before the end: the progress notes (other
                    # sessions) never wait for this transaction's row lock
                    with s.no_autoflush:
                        process_upload(s, self.settings, user, upload, self.region, note)
                    # the notes changed the row behind this session's back: write the
                    # final count even when it equals the value loaded (e.g. 0 when refused)
                    flag_modified(upload, "rows_read")
                    owner_only(Path(upload.stored_path).parent)
            except Exception as exc:  # never leave an upload "importing" forever
                with self.store.session() as s:
                    s.execute(
                        update(Upload)
                        .where(Upload.id == upload_id)
                        .values(status="rejected", message=f"导入失败：{exc}")
                    )
            finally:
                self._threads.pop(upload_id, None)


def _only_own_hospital(result, hospital_id: str, source: str, result_cls):
    """A hospital may upload its own cases only: other hospitals' rows are quarantined."""
    accepted: pa.Table = result.accepted
    mine = pc.fill_null(pc.equal(accepted["hospital_id"], hospital_id), False)
    if pc.all(mine).as_py():
        return result
    others = accepted.filter(pc.invert(mine))
    sources = result.sources
    numbers = (
        sources.filter(pc.invert(mine))["row_number"].to_pylist()
        if sources is not None
        else [None] * others.num_rows
    )
    rows = []
    for r, number in zip(others.to_pylist(), numbers, strict=True):
        original = {k: (str(v) if v is not None else None) for k, v in r.items()}
        rows.append(
            {
                "file": source,
                "row_number": number,
                "reason": f"定点医疗机构代码 {r['hospital_id']} 不是本院（{hospital_id}），不能代为上传",
                "original": json.dumps(original, ensure_ascii=False),
            }
        )
    extra = pa.Table.from_pylist(rows, schema=result.quarantine.schema)
    quarantine = pa.concat_tables([result.quarantine, extra])
    files = result.files
    files[0].accepted -= others.num_rows
    files[0].quarantined += others.num_rows
    return result_cls(
        accepted.filter(mine),
        quarantine,
        result.errors,
        files,
        result.contract,
        sources.filter(mine) if sources is not None else None,
    )


def _not_others_cases(result, region: RegionData, uploads: list[str], source: str, result_cls):
    """Quarantine accepted rows whose case id belongs to another hospital; count the rows
    that correct the uploader's own earlier version. Returns (result, collisions, replaced).
    """
    accepted: pa.Table = result.accepted
    owners = region.case_owners(accepted, uploads)
    owner = owners["owner"]
    foreign = pc.fill_null(pc.not_equal(owner, owners["hospital_id"]), False)
    replaced = int(pc.sum(pc.fill_null(pc.equal(owner, owners["hospital_id"]), False)).as_py() or 0)
    n_foreign = int(pc.sum(foreign).as_py() or 0)
    if n_foreign == 0:
        return result, 0, replaced
    sources = result.sources
    rows = []
    bad = accepted.filter(foreign).to_pylist()  # only the refused rows: a short loop
    bad_numbers = (
        sources.filter(foreign)["row_number"].to_pylist()
        if sources is not None
        else [None] * len(bad)
    )
    for r, number in zip(bad, bad_numbers, strict=True):
        original = {k: (str(v) if v is not None else None) for k, v in r.items()}
        rows.append(
            {
                "file": source,
                "row_number": number,
                "reason": (
                    f"结算清单号 {r['case_id']} 已由其他定点医疗机构提交，"
                    f"不能由 {r['hospital_id']} 上传或更正（已提交医保经办机构核查）"
                ),
                "original": json.dumps(original, ensure_ascii=False),
            }
        )
    extra = pa.Table.from_pylist(rows, schema=result.quarantine.schema)
    keep = pc.invert(foreign)
    files = result.files
    files[0].accepted -= n_foreign
    files[0].quarantined += n_foreign
    out = result_cls(
        accepted.filter(keep),
        pa.concat_tables([result.quarantine, extra]),
        result.errors,
        files,
        result.contract,
        sources.filter(keep) if sources is not None else None,
    )
    out.check_invariant()
    return out, n_foreign, replaced


def _run_qc(upload: Upload, accepted: pa.Table, folder: Path) -> list[str]:
    """前置质控 of the accepted rows (opendip.qc); results go to the upload's folder."""
    import pyarrow.parquet as pq

    try:
        from opendip.codes import demo_code_tables
        from opendip.engine import connect, table_from_arrow
        from opendip.policy import demo_policy_path, load_policy
        from opendip.qc import codes_to_ibis, rules_for_policy, run_qc

        policy_path = demo_policy_path()
        policy = load_policy(policy_path)
        con = connect()
        qc = run_qc(
            table_from_arrow(con, accepted, "upload_cases"),
            codes_to_ibis(con, demo_code_tables()),
            rules_for_policy(policy, policy_path),
            policy,
        )
        findings = qc.findings.to_pyarrow()
        status = qc.case_status.to_pyarrow()
    except Exception as exc:  # QC must never turn an upload into a 500
        return [f"质控未能完成：{exc}"]
    pq.write_table(findings, folder / "qc_findings.parquet")
    pq.write_table(status, folder / "qc_case_status.parquet")
    blocking = int(pc.sum(status["blocking"]).as_py() or 0)
    passed = int(pc.sum(status["passed"]).as_py() or 0)
    upload.outputs = {
        **upload.outputs,
        "qc_findings": str(folder / "qc_findings.parquet"),
        "qc_case_status": str(folder / "qc_case_status.parquet"),
        "qc_passed": passed,
        "qc_blocking": blocking,
        "qc_findings_count": findings.num_rows,
    }
    return [
        f"前置质控：{passed} 例通过，{blocking} 例存在阻断性问题，共 {findings.num_rows} 条质控提示"
    ]


#: 病案首页 export columns (HQMS / 卫统4): 病案号 and 出院时间 mark a front-page file.
FRONT_PAGE_MARKERS = frozenset({"BAH", "CYSJ"})


def is_front_page_export(path: Path) -> bool:
    """A CSV whose header holds the front-page column codes (not a settlement list)."""
    if path.suffix.lower() not in (".csv", ".txt"):
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError:
        return False
    first = head.decode("gb18030", errors="ignore").lstrip("\ufeff").splitlines()[:1]
    names = {c.strip().strip('"').upper() for c in first[0].split(",")} if first else set()
    return names >= FRONT_PAGE_MARKERS


def match_by_record_number(pages: pa.Table, lists: pa.Table) -> pa.Table:
    """Front pages whose id (病案号-住院次数) is no settlement list's but whose 病案号 is
    the list number of one of the same hospital's lists (a HIS numbering its lists by the
    病案号, as the demo region's hospitals do) take that list's id, so the consistency
    checks compare them and the pass rate counts them for that case."""
    if lists.num_rows == 0 or pages.num_rows == 0:
        return pages

    def keys(hospital: pa.Array, ident: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(
            pc.fill_null(hospital.cast(pa.string()), ""),
            pc.fill_null(ident.cast(pa.string()), ""),
            "\x1f",
        )

    known = pc.is_in(pages["case_id"], lists["case_id"])
    by_number = pc.is_in(
        keys(pages["hospital_id"], pages["patient_id"]),
        keys(lists["hospital_id"], lists["case_id"]),
    )
    use = pc.and_(pc.invert(known), by_number)
    ids = pc.if_else(use, pages["patient_id"], pages["case_id"])
    return pages.set_column(pages.schema.get_field_index("case_id"), "case_id", ids)


def _process_front_pages(
    s: Session, user: User, upload: Upload, region: RegionData | None
) -> Upload:
    """病案首页 upload: converted (opendip.ingest.frontpage) and checked by front-page QC
    against the settlement lists the region holds for the same case ids; the findings show
    in the upload result like the settlement-list QC findings."""
    import datetime as dt

    import pyarrow.parquet as pq

    from opendip.engine import connect
    from opendip.ingest.frontpage import convert_front_pages
    from opendip.policy import demo_policy_path, load_policy
    from opendip.qc.frontpage import (
        front_pages_from_conversion,
        rules_for_qc_policy,
        run_front_page_qc,
    )

    path = Path(upload.stored_path)
    folder = path.parent
    try:
        conversion = convert_front_pages([path], upload.hospital_id)
        submitted = (upload.created_at or dt.datetime.now()).date()
        pages = front_pages_from_conversion(conversion, submitted)
        lists = pa.table({"case_id": pa.array([], pa.string())})
        if region is not None:
            cases = region.cases_expr(repo.accepted_upload_files(s))
            if cases is not None:
                ids = pages["case_id"].to_pylist() + pages["patient_id"].to_pylist()
                cases = cases.filter(cases.case_id.isin([i for i in ids if i]))
                lists = cases.select(
                    "case_id", "hospital_id", "main_diagnosis", "main_procedure"
                ).to_pyarrow()
                pages = match_by_record_number(pages, lists)
                lists = lists.filter(pc.is_in(lists["case_id"], pages["case_id"]))
        policy_path = demo_policy_path()
        policy = load_policy(policy_path)
        rules = rules_for_qc_policy(policy.qc, Path(policy_path).parent)
        result = run_front_page_qc(connect(), pages, lists, policy.qc, rules)
    except Exception as exc:  # a front page that cannot be read is refused, never a 500
        upload.status = "rejected"
        upload.message = f"病案首页无法解析：{exc}"
        repo.audit(s, user, "upload.rejected", "upload", upload.id, {"file": upload.filename})
        return upload
    pq.write_table(result.findings, folder / "qc_findings.parquet")
    pq.write_table(result.status, folder / "front_page_status.parquet")
    passed = int(pc.sum(result.status["passed"]).as_py() or 0)
    n = pages.num_rows
    upload.rows_read = upload.rows_accepted = n
    upload.rows_quarantined = 0
    upload.outputs = {
        "qc_findings": str(folder / "qc_findings.parquet"),
        "front_page_status": str(folder / "front_page_status.parquet"),
        "front_page_passed": passed,
        "qc_findings_count": result.findings.num_rows,
    }
    upload.status = "imported"
    upload.message = (
        f"病案首页 {n} 份：首页质控通过 {passed} 份（通过率 "
        f"{passed / n:.2%}），共 {result.findings.num_rows} 条首页质控提示；与结算清单比对 "
        f"{lists.num_rows} 份"
        if n
        else "病案首页文件没有数据行"
    )
    repo.audit(
        s,
        user,
        "upload.front_pages",
        "upload",
        upload.id,
        {"file": upload.filename, "front_pages": n, "passed": passed},
    )
    return upload


def qc_preview(upload: Upload, limit: int = 20) -> list[dict[str, object]]:
    """The first QC findings of an upload (case, level, field, message), level and field
    as their Chinese labels."""
    import pyarrow.parquet as pq

    path = upload.outputs.get("qc_findings")
    if not path or not Path(path).exists():
        return []
    from opendip.qc import LEVEL_LABELS
    from opendip.qc.fields import field_label

    t = pq.read_table(path, columns=["case_id", "level", "field", "message"])
    rows = t.slice(0, limit).to_pylist()
    for r in rows:  # the page shows Chinese labels, never rule identifiers
        r["level"] = LEVEL_LABELS.get(str(r["level"]), str(r["level"]))
        r["field"] = field_label(str(r["field"] or ""))
    return rows


FRONT_PAGE_STATUS_SCHEMA = pa.schema(
    [("case_id", pa.string()), ("hospital_id", pa.string()), ("passed", pa.bool_())]
)


def front_page_statuses(s: Session) -> pa.Table:
    """病案首页质控 status of every front page the hospitals uploaded (case_id, hospital_id,
    passed), a case's latest upload winning: the input of the assessment's and the credit
    rating's front-page QC pass rate. Empty (with its columns) when none was uploaded."""
    import pyarrow.parquet as pq

    parts = []
    rows = s.scalars(select(Upload).where(Upload.status == "imported").order_by(Upload.id))
    for order, u in enumerate(rows):
        path = (u.outputs or {}).get("front_page_status")
        if not path or not Path(path).is_file():
            continue
        t = pq.read_table(path, columns=["case_id", "hospital_id", "passed"])
        t = t.cast(FRONT_PAGE_STATUS_SCHEMA)
        parts.append(t.append_column("_order", pa.array([order] * t.num_rows, pa.int64())))
    if not parts:
        return FRONT_PAGE_STATUS_SCHEMA.empty_table()
    every = pa.concat_tables(parts)
    latest = every.group_by("case_id").aggregate([("_order", "max")])
    latest = latest.rename_columns(["case_id", "_order"])
    kept = every.join(latest, ["case_id", "_order"], join_type="inner")
    # a file repeating a case id keeps one row of it
    kept = kept.group_by(["case_id", "_order"], use_threads=False).aggregate(
        [("hospital_id", "first"), ("passed", "min")]
    )
    kept = kept.rename_columns(["case_id", "_order", "hospital_id", "passed"])
    return kept.select(["case_id", "hospital_id", "passed"]).sort_by("case_id")
