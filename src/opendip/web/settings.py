"""Platform settings (operational, not DIP policy): data dir, store URL, auth limits,
upload limits and workflow deadlines."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from opendip.ingest.limits import ImportLimits
from opendip.workflow import Deadlines


@dataclass
class Settings:
    #: The region directory (`opendip demo` writes one): hospitals.parquet, cases_<year>...
    data_dir: Path
    #: SQLAlchemy URL of the operational store; default SQLite under data_dir/platform.
    db_url: str | None = None
    #: The region policy file; default: data_dir/policy.yaml if present, else the demo's.
    policy_path: Path | None = None
    session_lifetime: dt.timedelta = dt.timedelta(hours=8)
    session_idle: dt.timedelta = dt.timedelta(minutes=60)
    #: Seconds a checked session is trusted by the read-only per-case API without asking
    #: the store again (changes made in this process apply at once; 0 turns it off).
    session_check_seconds: float = 5.0
    #: Failed logins before the account is locked, and for how long.
    max_failed_logins: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    #: Failed logins from one client address (any user names) within `client_window`
    #: before that address is refused for the rest of the window (per process).
    client_max_failed_logins: int = 20
    client_window: dt.timedelta = dt.timedelta(minutes=15)
    #: Send cookies with Secure (set when served over HTTPS).
    secure_cookies: bool = False
    max_upload_bytes: int = 50 * 1024 * 1024
    #: Bounds of one upload's import (rows, cells, field length, decompressed Excel/Parquet).
    import_limits: ImportLimits = field(
        default_factory=lambda: ImportLimits(
            max_rows=1_000_000,
            max_cells=60_000_000,
            max_decompressed_bytes=512 << 20,
            max_shared_strings_bytes=64 << 20,
        )
    )
    #: Imports running at once (each in a worker thread, off the event loop); more wait.
    parallel_imports: int = 2
    max_attachment_bytes: int = 10 * 1024 * 1024
    #: Working days allowed per workflow state (经办规程).
    deadlines: Deadlines = field(default_factory=Deadlines)
    #: Run pipeline jobs in a background thread (tests may run them inline).
    background_runs: bool = True
    page_size: int = 50
    #: System-to-system API (`/api/v1`): calls allowed per API key within the window
    #: (seconds, sliding, per process); more are answered 429 with Retry-After.
    api_rate_limit: int = 120
    api_rate_window: float = 60.0
    #: The platform's date for pre-grouping and pushed cases (length of an ongoing stay, the
    #: policy version in force, the QC run date); None: the system date. Tests pin it so
    #: that no answer depends on the day they run.
    today: dt.date | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @property
    def platform_dir(self) -> Path:
        path = self.data_dir / "platform"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)  # the store, uploads and attachments: owner only
        return path


def platform_today(request) -> dt.date:
    """`Settings.today` of the request's app, else the system date."""
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "today", None) or dt.date.today()
