"""The registry at the speed of its store: the example app against bare Litestar handlers, over HTTP, in one run.

    .venv/bin/python bench/run.py            # full: 3 rounds, 10 s per measurement (about 25 minutes)
    .venv/bin/python bench/run.py --quick    # smoke check: 1 round, 3 s per measurement (about 5 minutes)

Run it from a checkout whose ``.venv`` exists (``python3 scripts/dev.py test`` builds it). What is missing it installs
itself: ``wrk`` and ``redis-server`` with apt-get (it must then run as root, and says so), and the server (granian,
the exact versions in ``bench/requirements.txt``) into ``bench/.venv``, a venv that also sees the project's ``.venv``.

One server, granian with one worker, pinned to CPU 0, serves either the example app on one store (memory, SQLite,
PostgreSQL, Redis) or ``bench/baseline_app.py``, bare handlers doing the least store work each operation needs (one
Redis ``SET EX`` for a ping, one ``SET`` for a register, one SQLAlchemy async ``UPDATE`` for a heartbeat on SQL). wrk,
pinned to CPU 1 with 64 connections, drives each endpoint for a warm-up and then a measured period. Every round
alternates baseline and product, store by store; the figures are medians over rounds, and only ratios measured in
the same run count. List pages are measured afterwards with one client, among ``--list-count`` services.

Before each measurement it waits (up to a bound) for the machine to be quiet; during it, it samples the CPU of the
server, wrk, the store and everything else. A measurement in which other processes took more than ``--noisy-max`` %
of a core is measured again (up to ``--retries`` times) and flagged noisy if it stays so. Loads go to 127.0.0.1 only
and stop by themselves (wrk's ``-d``, with a timeout on top); the script stops only the processes it started.

Results go to ``bench/results/<stamp>/`` (``results.tsv``, ``noisy.tsv``, ``summary.json``, ``meta.json``, logs), and
``docs/performance.md`` (between its ``bench:begin``/``bench:end`` markers) and ``docs/performance.svg`` are
regenerated from them unless ``--no-docs`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BENCH_VENV = BENCH / ".venv"
DOCS_PAGE = ROOT / "docs" / "performance.md"
DOCS_SVG = ROOT / "docs" / "performance.svg"
HOST = "127.0.0.1"  # fixed on purpose: load never goes anywhere but loopback
SERVER_PORTS = range(18080, 18980)
REDIS_PORTS = range(16390, 16400)
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/perf"
KEY = "bench-key-0123456789"  # a service key of account "bench" (keys have at least 16 characters)
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMES = "\N{MULTIPLICATION SIGN}"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def product_env(url: str) -> dict[str, str]:
    """The example app's settings under benchmark: one service account that also owns the (open) TTL dialect."""
    return {
        "REGISTRY_STORE_URL": url,
        "REGISTRY_SERVICE_KEYS": f"bench={KEY}",
        "REGISTRY_AUTO_APPROVE_ACCOUNTS": "bench",
        "REGISTRY_TTL_ACCOUNT": "bench",
        "REGISTRY_TTL_OPEN": "true",
        "REGISTRY_DEFAULT_TTL_SECONDS": "3600",
        "REGISTRY_MAX_PAGE_SIZE": "500",
    }


# ------------------------------------------------------------------------------------------------------ settings
@dataclass
class Settings:
    quick: bool
    duration: int
    warmup: int
    rounds: int
    id_space: int
    list_count: int
    list_duration: int
    connections: int
    quiet_max: float
    quiet_wait: float
    noisy_max: float
    retries: int
    stores: list[str]
    lists: bool
    docs: bool
    report: Path | None
    server_cpu: int = 0
    load_cpu: int = 1


def parse_args() -> Settings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round, 1 s warm-up, 3 s per measurement, small stores")
    parser.add_argument("--duration", type=int, help="seconds measured per endpoint (full 10, quick 3)")
    parser.add_argument("--warmup", type=int, help="seconds of discarded load before each measurement (full 2)")
    parser.add_argument("--rounds", type=int, help="baseline/product alternations (full 3, quick 1)")
    parser.add_argument("--id-space", type=int, help="services registered before ping/heartbeat (full 10,000)")
    parser.add_argument("--list-count", type=int, help="services among which list pages are read (full 100,000)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quiet-max", type=float, default=15.0, help="wait until the box is at most this %% busy")
    parser.add_argument("--quiet-wait", type=float, help="... but no longer than this many seconds (full 60)")
    parser.add_argument("--noisy-max", type=float, default=10.0, help="foreign CPU (%% of a core) that makes noise")
    parser.add_argument("--retries", type=int, help="measure a noisy measurement again this often (full 2, quick 1)")
    parser.add_argument("--stores", default="redis,sqlite,postgres,memory", help="comma-separated subset")
    parser.add_argument("--no-lists", action="store_true", help="skip the list pages")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/performance.{md,svg} alone")
    parser.add_argument("--report", type=Path, help="measure nothing: rebuild the page of an earlier run's directory")
    args = parser.parse_args()
    quick = args.quick

    def pick(value: int | float | None, full: int | float, fast: int | float) -> Any:
        return value if value is not None else (fast if quick else full)

    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(stores) - {"redis", "sqlite", "postgres", "memory"}
    if unknown:
        parser.error(f"unknown stores: {', '.join(sorted(unknown))}")
    settings = Settings(
        quick=quick,
        duration=pick(args.duration, 10, 3),
        warmup=pick(args.warmup, 2, 1),
        rounds=pick(args.rounds, 3, 1),
        id_space=pick(args.id_space, 10_000, 1_000),
        list_count=pick(args.list_count, 100_000, 1_000),
        list_duration=pick(args.duration, 5, 3),
        connections=args.connections,
        quiet_max=args.quiet_max,
        quiet_wait=pick(args.quiet_wait, 60, 15),
        noisy_max=args.noisy_max,
        retries=pick(args.retries, 2, 1),
        stores=stores,
        lists=not args.no_lists,
        docs=not args.no_docs,
        report=args.report,
    )
    if not 1 <= settings.duration <= 120 or not 0 <= settings.warmup <= 30 or not 1 <= settings.rounds <= 10:
        parser.error("duration must be 1..120 s, warm-up 0..30 s, rounds 1..10")
    if not 1 <= settings.id_space <= 99_999 or settings.list_count < 100:
        parser.error("id space must be 1..99,999 (ids svc-00001..) and list count at least 100")
    if os.cpu_count() is None or (os.cpu_count() or 1) < 2:
        parser.error("two CPUs are needed: one for the server, one for the load generator")
    return settings


# ------------------------------------------------------------------------------------------------------ setup
def ensure_tools() -> None:
    """wrk, redis-server and taskset from Debian when missing (apt-get, as root)."""
    wanted = {"wrk": "wrk", "redis-server": "redis-server", "redis-cli": "redis-tools", "taskset": "util-linux"}
    missing = sorted({package for tool, package in wanted.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {', '.join(missing)}: install them (apt-get install {' '.join(missing)}) or run as root")
    log(f"installing {' '.join(missing)} with apt-get (running as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env)


def ensure_bench_venv() -> Path:
    """``bench/.venv``: granian (pinned in requirements.txt), seeing the project's ``.venv`` through a .pth file."""
    python = BENCH_VENV / "bin" / "python"
    pins = dict(
        line.split("==")
        for line in (BENCH / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    check = f"import importlib.metadata as m, sys; sys.exit(any(m.version(p) != v for p, v in {pins!r}.items()))"
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
        return python
    log(f"setting up {BENCH_VENV} (pip install -r bench/requirements.txt)")
    subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    project_site = sysconfig.get_paths()["purelib"]  # the project's .venv: this script runs in it
    (site / "litestar_registry_project.pth").write_text(f"{project_site}\n{ROOT}\n")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(BENCH / "requirements.txt")], check=True)
    subprocess.run([str(python), "-c", check], check=True)
    return python


def free_port(ports: range, taken: set[int]) -> int:
    for port in ports:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise SystemExit(f"no free port in {ports.start}..{ports.stop - 1} on {HOST}")


# ------------------------------------------------------------------------------------------------------ CPU
def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of the whole box ("cpu") and of each CPU, from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        name, *values = line.split()
        ticks = [int(v) for v in values[:8]]
        total = sum(ticks)
        out[name] = (total - ticks[3] - ticks[4], total)
    return out


def box_busy(seconds: float = 1.0) -> float:
    """Busy time of the whole box over ``seconds``, in % of one CPU."""
    a = cpu_times()
    time.sleep(seconds)
    b = cpu_times()
    elapsed = b["cpu0"][1] - a["cpu0"][1]
    return 100.0 * (b["cpu"][0] - a["cpu"][0]) / max(elapsed, 1)


@dataclass
class Proc:
    ppid: int
    ticks: int  # utime + stime + cutime + cstime
    cmd: str


def proc_snapshot() -> dict[int, Proc]:
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        head, _, rest = raw.rpartition(") ")
        fields = rest.split()
        procs[int(entry.name)] = Proc(int(fields[1]), sum(int(v) for v in fields[11:15]), head.partition(" (")[2])
    return procs


def descendants(roots: set[int], parents: dict[int, int]) -> set[int]:
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if pid not in found and ppid in found:
                found.add(pid)
                changed = True
    return found


def postgres_backend_db(pid: int) -> str | None:
    """The database a PostgreSQL backend serves, from its process title; None for auxiliary processes."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    found = re.search(r"postgres: (?:[^:]+: )?\S+ (\S+) \S+\(\d+\)", title) or re.search(
        r"postgres: (?:[^:]+: )?\S+ (\S+) \[local\]", title
    )
    return found.group(1) if found else None


@dataclass
class Accounting:
    """Who used the CPU during a measurement, in % of one core."""

    server: float
    wrk: float
    store: float
    foreign: float
    kernel: float


class CpuMeter:
    """Splits the box's CPU between the server, wrk (this script's reaped children), the store and the rest."""

    def __init__(self, store_pids: set[int], store_db: str = "perf") -> None:
        self.store_pids = store_pids
        self.store_db = store_db
        self._start: tuple[dict[int, Proc], dict[str, tuple[int, int]], float, int] | None = None

    def _classes(self, snapshots: list[dict[int, Proc]], server_pid: int) -> dict[int, str]:
        parents = {pid: p.ppid for snap in snapshots for pid, p in snap.items()}
        mine = descendants({os.getpid()}, parents)
        server = descendants({server_pid}, parents) if server_pid else set()
        store = descendants(set(self.store_pids), parents)
        classes = {}
        for pid, ppid in parents.items():
            if pid in server:
                classes[pid] = "server"
            elif pid in store:  # before "mine": the Redis server is this script's child
                db = postgres_backend_db(pid)
                classes[pid] = "store" if db is None or db == self.store_db else "foreign"
            elif pid in mine:
                classes[pid] = "mine"
            elif pid == 2 or ppid == 2:
                classes[pid] = "kernel"
            else:
                classes[pid] = "foreign"
        return classes

    def start(self) -> None:
        self._start = (proc_snapshot(), cpu_times(), time.monotonic(), self._children_ticks())

    @staticmethod
    def _children_ticks() -> int:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return round((usage.ru_utime + usage.ru_stime) * CLK_TCK)

    def stop(self, server_pid: int) -> Accounting:
        assert self._start is not None
        before, cpu_before, _, children_before = self._start
        after, cpu_after, children_after = proc_snapshot(), cpu_times(), self._children_ticks()
        classes = self._classes([before, after], server_pid)
        used: dict[str, int] = {}
        for sign, snap in ((-1, before), (1, after)):
            for pid, p in snap.items():
                used[classes[pid]] = used.get(classes[pid], 0) + sign * p.ticks
        elapsed = max(cpu_after["cpu0"][1] - cpu_before["cpu0"][1], 1)

        def pct(ticks: int) -> float:
            return round(100.0 * ticks / elapsed, 1)

        return Accounting(
            server=pct(used.get("server", 0)),
            wrk=pct(children_after - children_before),
            store=pct(used.get("store", 0)),
            foreign=pct(max(used.get("foreign", 0), 0)),
            kernel=pct(used.get("kernel", 0)),
        )


# ------------------------------------------------------------------------------------------------------ processes
class Processes:
    """Everything this script starts, stopped by PID (TERM, then KILL after a grace period) on exit."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], *, log_path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if proc not in self.live:
            return
        self.live.remove(proc)
        family = descendants({proc.pid}, {pid: p.ppid for pid, p in proc_snapshot().items()})
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"PID {proc.pid} did not stop after TERM; sending KILL")
                proc.kill()
                proc.wait(5)
        for pid in family - {proc.pid}:  # a worker that outlived its parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in reversed(list(self.live)):
            self.stop(proc)


def http_status(url: str, *, timeout: float = 5.0, method: str = "GET", data: bytes | None = None) -> int:
    headers = {"Authorization": f"Bearer {KEY}"} if "/api/" in url else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


# ------------------------------------------------------------------------------------------------------ the run
@dataclass
class Endpoint:
    name: str
    method: str
    path: str
    body: str = "-"  # a file under bench/bodies, or "-"


BASE_REDIS = [
    Endpoint("noop", "GET", "/noop"),
    Endpoint("ping", "PUT", "/ping/{id}"),
    Endpoint("register", "POST", "/register", "baseline_register.json"),
]
BASE_SQL = [Endpoint("sqlping", "PUT", "/sqlping/{id}")]
PRODUCT = [
    Endpoint("register", "POST", "/v2/services/$register", "ttl_register.json"),
    Endpoint("ping", "PUT", "/v2/services/{id}/$ping"),
    Endpoint("heartbeat", "POST", "/api/v1/registry/heartbeat", "heartbeat.json"),
    Endpoint("get", "GET", "/v2/services/{id}"),
]
LIST = "/api/v1/registry/services?limit=100"
LISTS = [
    Endpoint("list", "GET", LIST),
    Endpoint("list_status", "GET", LIST + "&status=active"),
    Endpoint("list_tag", "GET", LIST + "&tag=group-3"),
    Endpoint("list_capability", "GET", LIST + "&capability=cap-3"),
    Endpoint("list_nomatch", "GET", LIST + "&tag=nomatch"),
]
COLUMNS = [
    *("round", "segment", "store", "app", "endpoint", "method", "path", "connections", "rps", "p50_ms", "p90_ms"),
    *("p99_ms", "max_ms", "requests", "errors", "non2xx", "srv_pct", "wrk_pct", "store_pct", "foreign_pct"),
    *("kernel_pct", "pre_busy_pct", "attempts", "noisy"),
]


@dataclass
class Bench:
    settings: Settings
    run_dir: Path
    granian: Path
    redis_port: int = 0
    redis_pid: int = 0
    pg_pids: set[int] = field(default_factory=set)
    procs: Processes = field(default_factory=Processes)
    ports: set[int] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    flatness: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- stores
    def start_redis(self) -> None:
        self.redis_port = free_port(REDIS_PORTS, self.ports)
        log(
            f"starting redis-server on {HOST}:{self.redis_port} (no persistence), "
            f"pinned to CPU {self.settings.load_cpu}"
        )
        argv = ["taskset", "-c", str(self.settings.load_cpu), "redis-server", "--bind", HOST]
        argv += ["--port", str(self.redis_port), "--save", "", "--appendonly", "no", "--dir", str(self.run_dir)]
        proc = self.procs.start(argv, log_path=self.run_dir / "redis.log", cwd=self.run_dir, env=dict(os.environ))
        for _ in range(100):
            if self.redis_cli("ping") == "PONG":
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"redis-server did not answer (see {self.run_dir / 'redis.log'})")
        self.redis_pid = proc.pid

    def redis_cli(self, *args: str, db: int = 0) -> str:
        argv = ["redis-cli", "-h", HOST, "-p", str(self.redis_port), "-n", str(db), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return result.stdout.strip()

    def redis_url(self, db: int) -> str:
        return f"redis://{HOST}:{self.redis_port}/{db}"

    def prepare_postgres(self) -> None:
        """Database ``perf`` (created when missing); the postmaster's PID, so that its CPU counts as the store's."""
        asyncio.run(self._postgres("CREATE DATABASE perf", create=True))
        data_dir = asyncio.run(self._postgres("SELECT setting FROM pg_settings WHERE name = 'data_directory'"))
        with contextlib.suppress(OSError, ValueError, TypeError):
            self.pg_pids = {int(Path(str(data_dir), "postmaster.pid").read_text().split()[0])}
        if not self.pg_pids:
            log("PostgreSQL's postmaster PID is unreadable: its CPU will count as foreign")

    @staticmethod
    async def _postgres(sql: str, *, create: bool = False) -> Any:
        import asyncpg

        conn = await asyncpg.connect(host=HOST, port=5432, user="postgres", database="postgres" if create else "perf")
        try:
            if create:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'perf'"):
                    await conn.execute(sql)
                return None
            return await conn.fetchval(sql) if sql.lstrip().upper().startswith("SELECT") else await conn.execute(sql)
        finally:
            await conn.close()

    def reset_postgres(self) -> None:
        tables = "registry_service_versions, registry_services, registry_alembic_version, pings"
        asyncio.run(self._postgres(f"DROP TABLE IF EXISTS {tables} CASCADE"))
        # tables a newer schema may add are dropped with the registry's own
        names = asyncio.run(
            self._postgres(
                "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE tablename LIKE 'registry_%'"
            )
        )
        if names:
            asyncio.run(self._postgres(f"DROP TABLE IF EXISTS {names} CASCADE"))

    def store_url(self, store: str, purpose: str) -> str:
        if store == "memory":
            return "memory://"
        if store == "sqlite":
            return f"sqlite+aiosqlite:///{self.run_dir / f'{purpose}.db'}"
        if store == "postgres":
            return PG_URL
        return self.redis_url({"product": 1, "list": 2}[purpose])

    # ---------------------------------------------------------------- servers
    def start_server(self, segment: str, app: str, cwd: Path, extra_env: dict[str, str]) -> tuple[Any, int]:
        port = free_port(SERVER_PORTS, self.ports)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "BENCH_"))}
        env.update(extra_env, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
        argv = ["taskset", "-c", str(self.settings.server_cpu), str(self.granian), "--interface", "asgi"]
        argv += ["--host", HOST, "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "info", app]
        proc = self.procs.start(argv, log_path=self.run_dir / f"server-{segment}.log", cwd=cwd, env=env)
        ready = "/noop" if app.startswith("baseline") else "/healthz"
        deadline = time.monotonic() + 60
        while http_status(f"http://{HOST}:{port}{ready}", timeout=1) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                self.procs.stop(proc)
                tail = (self.run_dir / f"server-{segment}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{segment}: server not ready:\n{tail}")
            time.sleep(0.2)
        return proc, port

    # ---------------------------------------------------------------- load
    def wrk(self, port: int, ep: Endpoint, seconds: int, connections: int) -> dict[str, float]:
        body = str(BENCH / "bodies" / ep.body) if ep.body != "-" else "-"
        argv = ["taskset", "-c", str(self.settings.load_cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
        argv += ["--timeout", "5s", "-s", str(BENCH / "wrk_bench.lua"), f"http://{HOST}:{port}"]
        argv += ["--", ep.method, ep.path, body, str(self.settings.id_space)]
        env = dict(os.environ, WRK_HEADER=f"Authorization: Bearer {KEY}", WRK_HEADER_MATCH="^/api/")
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 30)
        with (self.run_dir / "wrk.log").open("a") as out:
            out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
        line = next((x for x in result.stdout.splitlines() if x.startswith("WRKRESULT")), None)
        if result.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr[-500:]}")
        return {k: float(v) for k, v in (item.split("=") for item in line.split()[1:])}

    def wait_quiet(self) -> float:
        deadline = time.monotonic() + self.settings.quiet_wait
        while True:
            busy = box_busy(1.0)
            if busy <= self.settings.quiet_max or time.monotonic() >= deadline:
                return round(busy, 1)

    def smoke(self, port: int, ep: Endpoint) -> int:
        data = None
        if ep.body != "-":
            data = (BENCH / "bodies" / ep.body).read_text().replace("{id}", "svc-00001").encode()
        return http_status(f"http://{HOST}:{port}{ep.path.replace('{id}', 'svc-00001')}", method=ep.method, data=data)

    def measure(
        self,
        round_no: int,
        segment: str,
        store: str,
        app: str,
        server: Any,
        port: int,
        ep: Endpoint,
        connections: int,
        seconds: int,
    ) -> None:
        status = self.smoke(port, ep)
        if not 200 <= status < 300:
            raise RuntimeError(f"{segment} {ep.name}: smoke request got HTTP {status}")
        meter = CpuMeter(self.store_pids(store))
        for attempt in range(1, self.settings.retries + 2):
            pre = self.wait_quiet()
            if self.settings.warmup:
                self.wrk(port, ep, self.settings.warmup, connections)
            meter.start()
            result = self.wrk(port, ep, seconds, connections)
            cpu = meter.stop(server.pid)
            noisy = cpu.foreign > self.settings.noisy_max
            row = {
                "round": round_no,
                "segment": segment,
                "store": store,
                "app": app,
                "endpoint": ep.name,
                "method": ep.method,
                "path": ep.path,
                "connections": connections,
                "rps": round(result["rps"], 1),
                "p50_ms": result["p50_ms"],
                "p90_ms": result["p90_ms"],
                "p99_ms": result["p99_ms"],
                "max_ms": result["max_ms"],
                "requests": int(result["requests"]),
                "errors": int(result["err_connect"] + result["err_read"] + result["err_write"] + result["err_timeout"]),
                "non2xx": int(result["err_status"]),
                "srv_pct": cpu.server,
                "wrk_pct": cpu.wrk,
                "store_pct": cpu.store,
                "foreign_pct": cpu.foreign,
                "kernel_pct": cpu.kernel,
                "pre_busy_pct": pre,
                "attempts": attempt,
                "noisy": int(noisy),
            }
            log(
                f"  {segment:<16} {ep.name:<16} c={connections:<3} {row['rps']:>8.0f} req/s  p50 {row['p50_ms']:.2f} "
                f"p99 {row['p99_ms']:.2f} ms  err {row['errors']}/{row['non2xx']}  | CPU%: server {cpu.server:.0f} "
                f"wrk {cpu.wrk:.0f} store {cpu.store:.0f} foreign {cpu.foreign:.0f} | busy before {pre:.0f}"
                + ("  NOISY" if noisy else "")
            )
            if noisy and attempt <= self.settings.retries:
                write_tsv(self.run_dir / "noisy.tsv", [row])
                log(f"    noisy: foreign processes took {cpu.foreign:.0f}% of a core; measuring again")
                continue
            self.rows.append(row)
            write_tsv(self.run_dir / "results.tsv", [row])
            return

    def store_pids(self, store: str) -> set[int]:
        if store == "redis":
            return {self.redis_pid}
        if store == "postgres":
            return set(self.pg_pids)
        return set()

    # ---------------------------------------------------------------- seeding
    def seed_http(self, port: int, count: int, body: str = "ttl_register.json") -> None:
        """Register svc-00001.. through the TTL dialect (not measured); cheap when the last one is there already."""
        if http_status(f"http://{HOST}:{port}/v2/services/svc-{count:05d}") == 200:
            return
        template = (BENCH / "bodies" / body).read_text()
        began = time.monotonic()
        failed = asyncio.run(_register_all(f"http://{HOST}:{port}", template, count))
        log(f"  seeded {count} services over HTTP in {time.monotonic() - began:.1f} s ({failed} failed)")
        if failed:
            raise RuntimeError(f"seeding failed for {failed} services")

    def seed_list(self, store: str, url: str, port: int | None) -> float:
        count = self.settings.list_count
        began = time.monotonic()
        if store == "memory":
            assert port is not None
            failed = asyncio.run(_register_list(f"http://{HOST}:{port}", count))
            if failed:
                raise RuntimeError(f"list seeding failed for {failed} services")
        else:
            argv = ["taskset", "-c", str(self.settings.server_cpu), sys.executable, str(BENCH / "seed_store.py")]
            result = subprocess.run([*argv, "--url", url, "--count", str(count)], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"seed_store.py failed: {result.stderr[-1000:]}")
        seconds = time.monotonic() - began
        log(f"  seeded {count} services for the list pages on {store} in {seconds:.1f} s")
        return seconds

    def sweep(self, store: str, url: str) -> None:
        """Store-level: ``sweep_due`` calls with 100 due among the list's services, in a process of their own."""
        pre = self.wait_quiet()
        calls = 3 if self.settings.quick else 5
        argv = ["taskset", "-c", str(self.settings.server_cpu), sys.executable, str(BENCH / "seed_store.py")]
        result = subprocess.run([*argv, "--url", url, "--sweep", str(calls)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"seed_store.py --sweep failed: {result.stderr[-1000:]}")
        found = json.loads(result.stdout.strip().splitlines()[-1])
        found["pre_busy_pct"] = pre
        self.sweeps[store] = found
        log(f"  sweep of 100 due among {self.settings.list_count} on {store}: {found['ms']} ms (busy before {pre:.0f})")

    def memory_per_service(self) -> None:
        """Store-level: the memory store's heap per service among ``list_count`` (``bench_memory.py``)."""
        argv = ["taskset", "-c", str(self.settings.server_cpu), sys.executable, str(BENCH / "bench_memory.py")]
        result = subprocess.run([*argv, "--count", str(self.settings.list_count)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"bench_memory.py failed: {result.stderr[-1000:]}")
        self.memory = json.loads(result.stdout.strip().splitlines()[-1])
        log(f"  memory store: {self.memory['bytes_per_service']} bytes per service among {self.memory['count']}")

    def register_flatness(self) -> None:
        """Store-level: register (and ping) at ``list_count`` services against at 10 (``bench_register.py``)."""
        self.wait_quiet()
        quick = self.settings.quick
        argv = ["taskset", "-c", str(self.settings.server_cpu), sys.executable, str(BENCH / "bench_register.py")]
        argv += ["--backends", ",".join(self.settings.stores), "--sizes", f"10,{self.settings.list_count}", "--json"]
        argv += ["--rounds", "1" if quick else "3", "--ops", "100" if quick else "300"]
        env = {**os.environ, "REGISTRY_TEST_POSTGRES_URL": PG_URL, "REGISTRY_TEST_REDIS_URL": self.redis_url(3)}
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"bench_register.py failed: {result.stderr[-1000:]}")
        self.flatness = json.loads(result.stdout.strip().splitlines()[-1])
        for store, found in self.flatness.items():
            log(f"  register at {self.settings.list_count} vs at 10 on {store}: {found['ratio']['register']:.2f}")

    # ---------------------------------------------------------------- segments
    @contextlib.contextmanager
    def server(self, segment: str, app: str, cwd: Path, env: dict[str, str]) -> Iterator[tuple[Any, int]]:
        proc, port = self.start_server(segment, app, cwd, env)
        try:
            yield proc, port
        finally:
            self.procs.stop(proc)

    def segment(self, round_no: int, store: str, kind: str) -> None:
        name = f"{kind}-{store}"
        settings = self.settings
        try:
            if kind == "baseline":
                env = {"BENCH_ID_SPACE": str(settings.id_space)}
                if store == "redis":
                    env["BENCH_REDIS_URL"] = self.redis_url(0)
                    endpoints = BASE_REDIS
                else:
                    env["BENCH_SQL_URL"] = PG_URL if store == "postgres" else self.store_url("sqlite", "baseline")
                    endpoints = BASE_SQL
                with self.server(name, "baseline_app:app", BENCH, env) as (proc, port):
                    for ep in endpoints:
                        self.measure(
                            round_no, name, store, "baseline", proc, port, ep, settings.connections, settings.duration
                        )
            else:
                env = product_env(self.store_url(store, "product"))
                with self.server(name, "example_app.app:app", ROOT, env) as (proc, port):
                    self.seed_http(port, settings.id_space)
                    for ep in PRODUCT:
                        self.measure(
                            round_no, name, store, "product", proc, port, ep, settings.connections, settings.duration
                        )
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            self.failures.append(f"round {round_no} {name}: {exc}")
            log(f"FAILED {name}: {exc}")

    def list_segment(self, store: str) -> None:
        settings = self.settings
        name = f"list-{store}"
        try:
            url = self.store_url(store, "list")
            if store == "postgres":
                self.reset_postgres()
            if store != "memory":
                self.seed_list(store, url, None)
                self.sweep(store, url)
            with self.server(name, "example_app.app:app", ROOT, product_env(url)) as (proc, port):
                if store == "memory":
                    self.seed_list(store, url, port)
                for round_no in range(1, settings.rounds + 1):
                    for ep in LISTS:
                        self.measure(round_no, name, store, "product", proc, port, ep, 1, settings.list_duration)
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            self.failures.append(f"{name}: {exc}")
            log(f"FAILED {name}: {exc}")

    def run(self) -> None:
        settings = self.settings
        self.start_redis()
        if "postgres" in settings.stores:
            self.prepare_postgres()
            self.reset_postgres()
        for round_no in range(1, settings.rounds + 1):
            log(f"round {round_no} of {settings.rounds}")
            for store in settings.stores:
                if store != "memory":
                    self.segment(round_no, store, "baseline")
                self.segment(round_no, store, "product")
        if settings.lists:
            log(f"list pages of 100 among {settings.list_count} services, one client")
            for store in settings.stores:
                self.list_segment(store)
        if "memory" in settings.stores:
            try:
                self.memory_per_service()
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                self.failures.append(f"memory per service: {exc}")
        try:
            self.register_flatness()
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
            self.failures.append(f"register at {settings.list_count} vs at 10: {exc}")


async def _post_all(base: str, bodies: list[tuple[str, bytes]], headers: dict[str, str], connections: int = 32) -> int:
    """POST every body over ``connections`` keep-alive HTTP/1.1 connections; return how many did not answer 2xx.

    Raw asyncio streams, not an HTTP client library: seeding 100,000 services is then bound by the server, not by the
    client's own CPU per request (httpx took about 7 minutes for the memory store's list services on this machine).
    Each connection sends one request at a time (no pipelining) and reads its answer by ``Content-Length``.
    """
    parts = urlsplit(base)
    host, port = parts.hostname or HOST, parts.port or 80
    fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    failed = 0
    queue = iter(bodies)

    async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        status = int((await reader.readline()).split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close"
        if not chunked:
            return status, await reader.readexactly(length), close
        chunks = []
        while size := int((await reader.readline()).split(b";", 1)[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()  # the empty trailer section
        return status, b"".join(chunks), close

    async def worker() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for path, body in queue:
                head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{fixed}Content-Length: {len(body)}\r\n\r\n"
                writer.write(head.encode() + body)
                async with asyncio.timeout(30):
                    status, text, close = await answer(reader)
                if not 200 <= status < 300:
                    failed += 1
                    if failed < 4:
                        log(f"  seed: {path} -> {status} {text[:200]!r}")
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return failed


async def _register_all(base: str, template: str, count: int) -> int:
    bodies = [
        ("/v2/services/$register", template.replace("{id}", f"svc-{i:05d}").encode()) for i in range(1, count + 1)
    ]
    return await _post_all(base, bodies, {"Content-Type": "application/json"})


async def _register_list(base: str, count: int) -> int:
    """The memory store's list services, as seed_store.py registers them in the others, through the registry dialect."""
    bodies = []
    for i in range(1, count + 1):
        slug = f"list-{i:06d}"
        doc = {
            "slug": slug,
            "name": f"Inventory service {i}",
            "version": "2.14.3",
            "description": "Keeps stock levels for the warehouse domain; registered by the benchmark.",
            "base_url": f"http://{slug}.registry.invalid:8080",
            "health_url": f"http://{slug}.registry.invalid:8080/healthz",
            "tags": ["inventory", f"group-{i % 10}"],
            "capabilities": ["stock", f"cap-{i % 10}"],
            "metadata": {"region": "eu-west", "zone": "b", "team": "logistics"},
            "ttl_seconds": 3600,
        }
        bodies.append(("/api/v1/registry/register", json.dumps(doc).encode()))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    return await _post_all(base, bodies, headers)


def write_tsv(path: Path, rows: list[dict[str, Any]]) -> None:
    new = not path.exists()
    with path.open("a") as out:
        if new:
            out.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            out.write("\t".join(str(row[c]) for c in COLUMNS) + "\n")


# ------------------------------------------------------------------------------------------------------ report
@dataclass
class Line:
    what: str
    figure: str
    goal: str
    met: bool | None  # None: not measured, or no goal this harness can judge
    ratio: float | None = None
    goal_ratio: float | None = None
    noisy: bool = False  # a measurement behind the figure had more foreign CPU than --noisy-max


def medians(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["segment"], row["endpoint"]), []).append(row)
    out = {}
    for key, group in groups.items():
        out[key] = {
            k: statistics.median(float(r[k]) for r in group)
            for k in ("rps", "p50_ms", "p99_ms", "srv_pct", "store_pct", "foreign_pct")
        }
        out[key]["n"] = len(group)
        out[key]["noisy"] = sum(int(r["noisy"]) for r in group)
        out[key]["errors"] = sum(int(r["errors"]) + int(r["non2xx"]) for r in group)
    return out


def summarize(
    rows: list[dict[str, Any]], sweeps: dict[str, dict[str, Any]], list_count: int, id_space: int, quiet_max: float
) -> list[Line]:
    med = medians(rows)
    lines = []

    def ratio_line(
        what: str, product: tuple[str, str], base: tuple[str, str], goal: float, p99_goal: float | None, base_label: str
    ) -> None:
        p, b = med.get(product), med.get(base)
        goal_text = f"≥ {goal:g}{TIMES}" + (f", p99 ≤ {p99_goal:g}{TIMES} the bare handler's" if p99_goal else "")
        if not p or not b:
            lines.append(Line(what, "not measured", goal_text, None))
            return
        r = p["rps"] / b["rps"]
        p99r = p["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("inf")
        figure = (
            f"{r:.2f}{TIMES} {base_label} ({p['rps']:,.0f} vs {b['rps']:,.0f} req/s); "
            f"p99 {p['p99_ms']:.1f} vs {b['p99_ms']:.1f} ms ({p99r:.2f}{TIMES})"
        )
        if p["errors"]:
            figure += f"; {p['errors']:.0f} errors or non-2xx"
        met = r >= goal and (p99_goal is None or p99r <= p99_goal) and not p["errors"]
        lines.append(Line(what, figure, goal_text, met, r, goal, bool(p["noisy"] or b["noisy"])))

    ratio_line(
        f"TTL ping, Redis, {id_space:,} registered",
        ("product-redis", "ping"),
        ("baseline-redis", "ping"),
        0.8,
        1.5,
        "a bare handler doing one `SET EX`",
    )
    ratio_line(
        "TTL register, Redis",
        ("product-redis", "register"),
        ("baseline-redis", "register"),
        0.7,
        None,
        "a bare handler doing one `SET`",
    )
    ratio_line("heartbeat, Redis", ("product-redis", "heartbeat"), ("baseline-redis", "ping"), 0.7, None, "bare ping")
    ratio_line(
        "heartbeat, SQLite",
        ("product-sqlite", "heartbeat"),
        ("baseline-sqlite", "sqlping"),
        0.7,
        None,
        "a bare handler doing one SQLAlchemy async UPDATE",
    )
    ratio_line(
        "heartbeat, PostgreSQL",
        ("product-postgres", "heartbeat"),
        ("baseline-postgres", "sqlping"),
        0.7,
        1.5,
        "the same bare UPDATE handler",
    )
    for store, label in (("memory", "memory"), ("redis", "Redis"), ("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
        pages = {ep.name: med.get((f"list-{store}", ep.name)) for ep in LISTS}
        measured = {k: v for k, v in pages.items() if v and k != "list_nomatch"}
        if not measured:
            continue
        worst = max(v["p99_ms"] for v in measured.values())
        figure = ", ".join(
            f"{k.removeprefix('list_') if k != 'list' else 'none'} {v['p99_ms']:.1f}" for k, v in measured.items()
        )
        lines.append(
            Line(
                f"list page of 100 among {list_count:,}, one client, {label}",
                f"p99 ms by filter: {figure}",
                "p99 < 20 ms, filters included",
                worst < 20,
                noisy=any(v["noisy"] for v in measured.values()),
            )
        )
        nomatch, plain = pages.get("list_nomatch"), pages.get("list")
        if nomatch and plain:
            lines.append(
                Line(
                    f"list with a filter that matches nothing, {list_count:,}, {label}",
                    f"p99 {nomatch['p99_ms']:.1f} ms (a full page: {plain['p99_ms']:.1f} ms)",
                    "O(page), not O(registry)",
                    None,
                    noisy=bool(nomatch["noisy"] or plain["noisy"]),
                )
            )
    labels = {"redis": "Redis", "postgres": "PostgreSQL", "sqlite": "SQLite"}
    for store, found in sweeps.items():
        calls = ", ".join(f"{ms:.1f}" for ms in found["ms"])
        figure = f"median {found['median_ms']:.1f} ms ({calls}); box {found['pre_busy_pct']:.0f} % busy before"
        what = f"one sweep, 100 due among {list_count:,}, {labels[store]} (store-level, no HTTP)"
        noisy = found["pre_busy_pct"] > quiet_max
        lines.append(Line(what, figure, "< 50 ms on every store", found["median_ms"] < 50, noisy=noisy))
    return lines


def svg_plot(lines: list[Line], rows: list[dict[str, Any]], title: str) -> str:
    """Two panels from the data: product/baseline throughput ratios with their goals, and list-page p99s."""
    bars = [(ln.what, ln.ratio, ln.goal_ratio) for ln in lines if ln.ratio is not None]
    med = medians(rows)
    lists = [
        (f"{seg.removeprefix('list-')} {ep.removeprefix('list_') if ep != 'list' else 'none'}", m["p99_ms"])
        for (seg, ep), m in sorted(med.items())
        if seg.startswith("list-")
    ]
    width, left, bar_h, gap = 760, 330, 18, 8
    out: list[str] = []
    y = 40

    def text(x: float, y: float, s: str, **attrs: str) -> None:
        extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace("`", "")
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" {extra}>{s}</text>')

    for i, part in enumerate(title.split("\n")):
        text(10, 22 + 16 * i, part, font_weight="bold" if i == 0 else "normal")
    y += 16 * title.count("\n")
    scale_max = max([1.0] + [b[1] or 0 for b in bars])
    plot_w = width - left - 60
    text(10, y + 12, "req/s of the product ÷ req/s of the bare handler (bar), goal (red line)", font_style="italic")
    y += 24
    for label, ratio, goal in bars:
        w = plot_w * (ratio or 0) / scale_max
        color = "#3a7" if goal is not None and ratio is not None and ratio >= goal else "#d84"
        text(10, y + 13, label)
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        text(left + w + 4, y + 13, f"{ratio:.2f}{TIMES}")
        if goal is not None:
            gx = left + plot_w * goal / scale_max
            out.append(
                f'<line x1="{gx:.1f}" y1="{y - 2}" x2="{gx:.1f}" y2="{y + bar_h + 2}" stroke="#c00" stroke-width="2"/>'
            )
        y += bar_h + gap
    if lists:
        y += 16
        text(10, y + 12, "list page of 100, one client: p99 ms (bar), goal 20 ms (red line)", font_style="italic")
        y += 24
        p_max = max([25.0] + [p for _, p in lists])
        for label, p99 in lists:
            w = plot_w * p99 / p_max
            color = "#3a7" if p99 < 20 else "#d84"
            text(10, y + 13, label)
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            text(left + w + 4, y + 13, f"{p99:.1f} ms")
            gx = left + plot_w * 20 / p_max
            out.append(
                f'<line x1="{gx:.1f}" y1="{y - 2}" x2="{gx:.1f}" y2="{y + bar_h + 2}" stroke="#c00" stroke-width="2"/>'
            )
            y += bar_h + gap
    height = y + 10
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">'
        f'<rect width="{width}" height="{height}" fill="white"/>'
    )
    return head + "".join(out) + "</svg>\n"


def markdown(lines: list[Line], rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    noisy = sum(int(r["noisy"]) for r in rows)
    foreign = [float(r["foreign_pct"]) for r in rows]
    load = meta["load"]
    out = [
        f"Latest run: {meta['finished']} at commit `{meta['commit']}`"
        + (" (uncommitted changes in the tree)" if meta["dirty"] else "")
        + f", {'quick mode' if meta['settings']['quick'] else 'full mode'}: {meta['settings']['rounds']} round(s), "
        f"{meta['settings']['duration']} s per measurement after {meta['settings']['warmup']} s of warm-up, "
        f"{meta['settings']['connections']} connections; list pages {meta['settings']['list_duration']} s, one client.",
        "",
        f"Machine load: load average {load['loadavg_start']} at the start and {load['loadavg_end']} at the end; "
        f"the box was {load['busy_start']:.0f} % busy (of one CPU) before the run. During the measurements, "
        f"processes the benchmark did not start took {statistics.median(foreign or [0]):.0f} % of a core "
        f"(median; at most {max(foreign or [0]):.0f} %); {noisy} of {len(rows)} measurements stayed above "
        f"{meta['settings']['noisy_max']:g} % after retries and are marked noisy.",
        "",
    ]
    if noisy or meta["settings"]["quick"]:
        out += [
            ":::{warning}",
            "This run was "
            + ("a quick smoke check" if meta["settings"]["quick"] else "taken")
            + (" on a busy machine" if noisy else "")
            + ": its figures are not final. Rerun `.venv/bin/python bench/run.py` on a quiet machine.",
            ":::",
            "",
        ]
    out += [
        "A goal marked noisy was judged on measurements that other processes disturbed: it says nothing yet.",
        "",
        "| what | this run | goal | met |",
        "| --- | --- | --- | --- |",
    ]
    for ln in lines:
        met = "—" if ln.met is None else ("yes" if ln.met else "**no**")
        if ln.noisy:
            met += " (noisy)"
        out.append(f"| {ln.what} | {ln.figure} | {ln.goal} | {met} |")
    out += ["", "![Ratios to the bare handlers, and list-page p99s, of the latest run](performance.svg)", ""]
    out += [
        "Every measurement of the run (medians over rounds; CPU in % of one core, `fgn` is the CPU of processes the "
        "benchmark did not start):",
        "",
        "| server | endpoint | c | req/s | p50 ms | p99 ms | errors | server CPU | store CPU | fgn | noisy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    conns = {(r["segment"], r["endpoint"]): r["connections"] for r in rows}
    for (seg, ep), m in medians(rows).items():
        out.append(
            f"| {seg} | {ep} | {conns[(seg, ep)]} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.1f} | "
            f"{m['errors']:.0f} | {m['srv_pct']:.0f} | {m['store_pct']:.0f} | {m['foreign_pct']:.0f} | "
            f"{m['noisy']:.0f}/{m['n']:.0f} |"
        )
    if meta["failures"]:
        out += ["", "Failed in this run:", ""] + [f"- {f}" for f in meta["failures"]]
    return "\n".join(out) + "\n"


def update_docs(page: str, svg: str) -> None:
    text = DOCS_PAGE.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOCS_PAGE} lacks the {BEGIN} ... {END} markers: not rewritten")
    DOCS_PAGE.write_text(text[: start + len(BEGIN)] + "\n" + page + text[end:])
    DOCS_SVG.write_text(svg)


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip()


def versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "('litestar', 'granian', 'uvloop', 'redis', 'sqlalchemy', 'asyncpg', 'aiosqlite', 'msgspec')}))"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def main() -> int:
    settings = parse_args()
    if settings.report is not None:
        return report(settings.report, docs=settings.docs)
    try:
        import litestar_registry  # noqa: F401
    except ImportError:
        sys.exit("run this with the project's .venv: python3 scripts/dev.py test builds it, then .venv/bin/python ...")
    ensure_tools()
    granian_python = ensure_bench_venv()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = BENCH / "results" / f"{stamp}{'-quick' if settings.quick else ''}"
    run_dir.mkdir(parents=True)
    loadavg_start = Path("/proc/loadavg").read_text().split()[:3]
    busy_start = box_busy(2.0)
    log(f"results in {run_dir}; load average {' '.join(loadavg_start)}, box {busy_start:.0f} % busy (of one CPU)")
    bench = Bench(settings, run_dir, BENCH_VENV / "bin" / "granian")

    def interrupted(signum: int, _: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    started = datetime.now(UTC)
    commit, dirty = git("rev-parse", "--short", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    try:
        bench.run()
    except KeyboardInterrupt:
        bench.failures.append("interrupted")
        log("interrupted: stopping what this script started")
    finally:
        bench.procs.stop_all()
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,  # as the run started: the servers import the tree as it is then
        "dirty": dirty,
        "host": f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs",
        "versions": versions(granian_python),
        "settings": settings.__dict__,
        "load": {
            "loadavg_start": " ".join(loadavg_start),
            "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            "busy_start": busy_start,
        },
        "failures": bench.failures,
        "sweeps": bench.sweeps,
        "memory": bench.memory,
        "flatness": bench.flatness,
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    publish(run_dir, bench.rows, meta, docs=settings.docs)
    return 1 if bench.failures else 0


def publish(run_dir: Path, rows: list[dict[str, Any]], meta: dict[str, Any], *, docs: bool) -> None:
    """The table, the page and the plot of one run, from its measurements; into the docs unless ``docs`` is false."""
    conf = meta["settings"]
    lines = summarize(rows, meta["sweeps"], conf["list_count"], conf["id_space"], conf["quiet_max"])
    if meta.get("memory"):
        found = meta["memory"]
        figure = f"{found['kb']:.2f} KB ({found['bytes_per_service']:,} bytes) among {found['count']:,} services"
        lines.append(Line("memory store per service (store-level)", figure, "≤ 2 KB", found["kb"] <= 2))
    labels = {"memory": "memory", "redis": "Redis", "postgres": "PostgreSQL", "sqlite": "SQLite"}
    for store, found in meta.get("flatness", {}).items():
        small, large = found["sizes"][0], found["sizes"][-1]
        register = found["median_us"]["register"]
        figure = (
            f"{found['ratio']['register']:.2f} (median {register[str(large)]:,.0f} vs {register[str(small)]:,.0f} us; "
            f"ping {found['ratio']['ping']:.2f})"
        )
        what = f"register at {large:,} vs at {small:,}, {labels[store]} (store-level, no HTTP)"
        lines.append(Line(what, figure, "≤ 1.2 on every store", found["ratio"]["register"] <= 1.2))
    (run_dir / "summary.json").write_text(json.dumps([ln.__dict__ for ln in lines], indent=2) + "\n")
    page = markdown(lines, rows, meta)
    title = f"litestar-registry vs bare Litestar handlers, {meta['finished']}"
    noisy = sum(int(r["noisy"]) for r in rows)
    if noisy or conf["quick"]:
        title += f"\n{'a quick run; ' if conf['quick'] else ''}{noisy} of {len(rows)} measurements noisy: not final"
    svg = svg_plot(lines, rows, title)
    (run_dir / "performance.md").write_text(page)
    (run_dir / "performance.svg").write_text(svg)
    print(page)
    if docs and rows:
        update_docs(page, svg)
        log(f"updated {DOCS_PAGE.relative_to(ROOT)} and {DOCS_SVG.relative_to(ROOT)}")
    log(f"results: {run_dir}")


def report(run_dir: Path, *, docs: bool) -> int:
    rows = []
    with (run_dir / "results.tsv").open() as tsv:
        header = tsv.readline().rstrip("\n").split("\t")
        rows = [dict(zip(header, line.rstrip("\n").split("\t"), strict=True)) for line in tsv if line.strip()]
    publish(run_dir, rows, json.loads((run_dir / "meta.json").read_text()), docs=docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
