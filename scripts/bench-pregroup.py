#!/usr/bin/env python3
"""Loopback load benchmark of POST /api/pregroup (docs/benchmarks.md, issue 16 §4).

Starts `opendip serve` on a free 127.0.0.1 port on a copy of a region directory (default:
the small test region), logs one hospital user in, then sends pre-grouping requests at
fixed rates (open loop: a request is sent on schedule whether or not earlier ones have
answered) over keep-alive connections, and prints rate, p50, p99 and errors per rate.
Bounded: each rate runs for --seconds seconds (at most 60), only to 127.0.0.1, and the
server is stopped at the end.

    PYTHONPATH=src .venv/bin/python scripts/bench-pregroup.py --rates 100,250,500 --seconds 10 \
        --repeat 3

(on a shared machine take the big-run lock: `flock /tmp/opendip-bigrun.lock …`). `--profile
FILE` runs the server under cProfile (stats written when it stops).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_REGION = ROOT / "tests" / "web" / "region"
HOST = "127.0.0.1"
USER, PASSWORD = "bench-h1", "bench-password-123"


def bodies(data: Path, n: int = 200) -> list[dict]:
    """Requests built from the region's own cases (as a hospital would enter them)."""
    import pyarrow.parquet as pq

    path = sorted(data.glob("cases_*.parquet"))[-1]
    out = []
    for case in pq.read_table(path).slice(0, n).to_pylist():
        out.append(
            {
                "insurance_type": case["insurance_type"],
                "sex": case["sex"] if case["sex"] in ("0", "1", "2", "9") else "9",
                "age": min(max(int(case["age"] or 0), 0), 150),
                "discharge_date": case["discharge_date"].isoformat(),
                "los_days": max(int(case["los_days"] or 0), 0),
                "main_diagnosis": case["main_diagnosis"],
                "other_diagnoses": case["other_diagnoses"] or [],
                "main_procedure": case["main_procedure"],
                "other_procedures": case["other_procedures"] or [],
                "total_cost_yuan": f"{case['total_cost'] / 100:.2f}",
                "discharge_method": case["discharge_method"] or "1",
            }
        )
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare(data: Path) -> str:
    """The benchmark user (a hospital user of the region's first hospital)."""
    sys.path.insert(0, str(ROOT / "src"))
    from opendip.store import repositories as repo
    from opendip.web import Settings, create_app

    app = create_app(Settings(data_dir=data, background_runs=False))
    hospital = app.state.region.hospitals()[0]["hospital_id"]
    with app.state.store.session() as s:
        if repo.user_by_name(s, USER) is None:
            repo.create_user(s, USER, PASSWORD, "hospital", "压测", hospital)
    return hospital


#: uvicorn closes a keep-alive connection idle for 5 s: the client drops its own idle ones
#: before that instead of sending on a connection the server is closing.
KEEP_ALIVE_SECONDS = 4.0


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()

    def usable(self) -> bool:
        if self.reader.at_eof() or self.writer.is_closing():
            return False
        return time.monotonic() - self.used < KEEP_ALIVE_SECONDS

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = await self.reader.readexactly(length) if length else b""
        return status, body


async def open_conn(port: int) -> Conn:
    reader, writer = await asyncio.open_connection(HOST, port)
    return Conn(reader, writer)


def http_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def login(port: int) -> dict[str, str]:
    conn = await open_conn(port)
    body = json.dumps({"username": USER, "password": PASSWORD}).encode()
    conn.writer.write(
        http_request("POST", "/api/auth/login", body, {"Content-Type": "application/json"})
    )
    head = await conn.reader.readuntil(b"\r\n\r\n")
    text = head.decode("latin-1")
    cookie = ""
    length = 0
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "set-cookie" and not cookie:
            cookie = value.strip().split(";", 1)[0]
        if name.lower() == "content-length":
            length = int(value)
    payload = json.loads(await conn.reader.readexactly(length))
    conn.writer.close()
    return {
        "Content-Type": "application/json",
        "Cookie": cookie,
        "X-CSRF-Token": payload["csrf_token"],
    }


async def run_rate(
    port: int, headers: dict[str, str], cases: list[dict], rate: float, seconds: float, pid: int
) -> dict:
    n = int(rate * seconds)
    raws = [http_request("POST", "/api/pregroup", json.dumps(b).encode(), headers) for b in cases]
    idle: list[Conn] = [await open_conn(port) for _ in range(8)]
    latencies: list[float] = []
    errors = 0
    kinds: collections.Counter[str] = collections.Counter()

    lags: list[float] = []

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if not conn.usable():
                conn.writer.close()
                conn = None
        start = time.perf_counter()
        # how late the request leaves against its schedule (the generator's own delay)
        lags.append(start - due)
        try:
            if conn is None:
                conn = await open_conn(port)
            status, _ = await conn.request(raws[i % len(raws)])
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors += 1
            kinds[type(exc).__name__] += 1
            return
        latencies.append(time.perf_counter() - start)
        if status != 200:
            errors += 1
            kinds[f"HTTP {status}"] += 1
        conn.used = time.monotonic()
        idle.append(conn)

    cpu0 = cpu_seconds(pid)
    own0 = time.process_time()
    t0 = time.perf_counter()
    tasks = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    own = time.process_time() - own0
    for c in idle:
        c.writer.close()
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    lag = sorted(lags)
    return {
        "rate": rate,
        "sent": n,
        "achieved": len(lat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": lat[-1] * 1000,
        "errors": errors,
        "error_kinds": dict(kinds),
        "server_cpu_ms": cpu * 1000 / max(len(lat), 1),
        "client_cpu_ms": own * 1000 / max(n, 1),
        "lag_p99_ms": lag[min(len(lag) - 1, int(len(lag) * 0.99))] * 1000 if lag else 0.0,
    }


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("服务未能启动 / server did not start")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("服务启动超时 / server start timed out")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=TEST_REGION, help="region directory (copied)")
    ap.add_argument("--rates", default="100,250,500")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3, help="seconds at 50 req/s first")
    ap.add_argument("--repeat", type=int, default=1, help="run the rates N times (medians)")
    ap.add_argument("--profile", type=Path, help="run the server under cProfile, stats to FILE")
    args = ap.parse_args()
    seconds = min(args.seconds, 60.0)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="opendip-bench-api-") as tmp:
        data = Path(tmp) / "region"
        shutil.copytree(args.data, data, ignore=shutil.ignore_patterns("platform"))
        prepare(data)
        cases = bodies(data)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        prof = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
        cmd = [
            sys.executable,
            *prof,
            "-m",
            "opendip",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
        ]
        cmd += ["--no-demo-accounts"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_ready(port, proc)

            async def go() -> list[dict]:
                headers = await login(port)
                await run_rate(port, headers, cases, 50, args.warmup, proc.pid)
                out = []
                for run in range(1, args.repeat + 1):
                    for rate in (float(r) for r in args.rates.split(",")):
                        load = os.getloadavg()[0]
                        r = await run_rate(port, headers, cases, rate, seconds, proc.pid)
                        out.append({**r, "run": run, "load": load})
                return out

            try:  # the load generator shares the machine: the faster event loop if there
                import uvloop

                asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            except ImportError:
                pass
            results = asyncio.run(go())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"load average before: {load_before}; {os.cpu_count()} CPUs")
    head = (
        f"{'run':>3} {'load':>5} {'rate':>6} {'sent':>6} {'achieved':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'srv cpu':>8} {'gen cpu':>8} {'lag p99':>8} errors"
    )
    print(head)
    print(
        "(srv cpu / gen cpu: CPU ms per request of the server / of this load generator; lag p99:"
        " how late the generator sent, 99th percentile)"
    )
    for r in results:
        kinds = ", ".join(f"{k} ×{n}" for k, n in r["error_kinds"].items())
        print(
            f"{r['run']:>3} {r['load']:>5.1f} {r['rate']:>6.0f} {r['sent']:>6} "
            f"{r['achieved']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.1f} "
            f"{r['server_cpu_ms']:>8.2f} {r['client_cpu_ms']:>8.2f} {r['lag_p99_ms']:>8.2f} "
            f"{r['errors']} {kinds}"
        )
    if args.repeat > 1:
        print("medians over the runs:")
        for rate in sorted({r["rate"] for r in results}):
            rows = [r for r in results if r["rate"] == rate]

            def med(k: str, rows: list[dict] = rows) -> float:
                return statistics.median(r[k] for r in rows)

            print(
                f"{'med':>3} {med('load'):>5.1f} {rate:>6.0f} {'':>6} {med('achieved'):>9.1f} "
                f"{med('p50_ms'):>8.2f} {med('p99_ms'):>8.2f} {med('max_ms'):>8.1f} "
                f"{med('server_cpu_ms'):>8.2f} {med('client_cpu_ms'):>8.2f} "
                f"{med('lag_p99_ms'):>8.2f} {med('errors'):.0f}"
            )


if __name__ == "__main__":
    main()
