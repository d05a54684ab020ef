"""Tablets under load: N simulated tablets (default 50) for D seconds (default 60) against the
portal under gunicorn on loopback, each working its own groups' rosters the way a facilitator
does (open the roster, mark a no-show and a late arrival, patients sign, save the times, close
with the facilitator's signature), while a probe reads /healthz every 200 ms.

Prints p50/p95 per request kind and each p95 as a ratio to /healthz's p95 in the same run
(target <= 5x), the error count (target 0: any 4xx/5xx or dropped connection), and runs
`flask audit verify` afterwards (must pass). On SQLite it also searches the server log for
"database is locked" (target: none).

Run (loopback only; the PostgreSQL database is DROPPED and rebuilt):
    .venv/bin/python bench/tablets.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test_15
    .venv/bin/python bench/tablets.py --sqlite            # 4 workers x 3 threads = 12 threads
    .venv/bin/python bench/tablets.py --pg URL --sqlite   # both
Options: --tablets 50 --seconds 60 --workers 4
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live_portal import (ROOT, LivePortal, Tablet, portal_env, prepare,  # noqa: E402
                               run_roster)

TARGET_RATIO = 5.0
RAMP_SECONDS = 10.0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    def record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.times[kind].append(seconds)
            if status >= 400:
                self.errors.append(f"{kind}: HTTP {status}")

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def tablet_loop(port: int, email: str, info: dict, stop_at: float, stats: Stats,
                start_delay: float) -> None:
    tablet = Tablet(port)
    time.sleep(start_delay)  # tablets are switched on over a few seconds, not in one instant
    try:
        t0 = time.perf_counter()
        status = tablet.sign_in(email)
        stats.record("sign in", time.perf_counter() - t0, 200 if status == 302 else status)
        for session in info["sessions"]:
            if time.time() >= stop_at:
                break
            run_roster(tablet, session, info["name"], record=stats.record)
        # Rosters done: keep the tablet busy the way a facilitator's would be, reading Today.
        while time.time() < stop_at:
            t0 = time.perf_counter()
            status, _, _ = tablet.request("GET", "/today")
            stats.record("today", time.perf_counter() - t0, status)
            time.sleep(0.5)
    except Exception as exc:  # noqa: BLE001 - a dropped connection is an error to report
        stats.error(f"{email}: {type(exc).__name__}: {exc}")
    finally:
        tablet.close()


def health_probe(portal: LivePortal, stop: threading.Event, stats: Stats) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            status, _ = portal.get("/healthz")
        except OSError as exc:
            stats.error(f"/healthz: {exc}")
        else:
            stats.record("healthz", time.perf_counter() - t0, status)
        stop.wait(0.2)


def run(label: str, database_url: str | None, *, tablets: int, seconds: float, workers: int,
        threads: int, instance: Path) -> bool:
    env = portal_env(instance, database_url,
                     # The load run is about throughput, not the idle lock or sign-in limits.
                     PORTAL_LOGIN_ADDRESS_RATE_LIMIT="100000 per minute",
                     PORTAL_LOGIN_RATE_LIMIT="100000 per minute")
    print(f"\n== {label}: {tablets} tablets, {seconds:.0f} s, gunicorn {workers} workers x "
          f"{threads} threads ==", flush=True)
    t0 = time.time()
    world = prepare(env, tablets=tablets, cohorts_per_tablet=3, patients=6)
    print(f"setup: {sum(len(v['sessions']) for v in world.values())} rosters in "
          f"{time.time() - t0:.1f} s", flush=True)
    log = instance / "gunicorn.log"
    stats = Stats()
    with LivePortal(env, workers=workers, threads=threads, log=log) as portal:
        stop = threading.Event()
        probe = threading.Thread(target=health_probe, args=(portal, stop, stats))
        probe.start()
        stop_at = time.time() + seconds
        pool = [threading.Thread(target=tablet_loop,
                                 args=(portal.port, email, info, stop_at, stats,
                                       RAMP_SECONDS * i / max(len(world), 1)))
                for i, (email, info) in enumerate(world.items())]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        stop.set()
        probe.join()
    elapsed = time.time() - stop_at + seconds
    verify = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "audit", "verify"],
                            env=env, cwd=ROOT, capture_output=True, text=True)
    server_log = log.read_text(errors="replace")
    locked = server_log.count("database is locked")
    tracebacks = server_log.count("Traceback")

    health = stats.times.get("healthz") or [float("nan")]
    base = pct(health, 95)
    print(f"{'request':<12} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p95 / healthz p95':>18}")
    worst = 0.0
    for kind in ("healthz", "sign in", "open roster", "mark", "sign", "save times", "close", "today"):
        values = stats.times.get(kind)
        if not values:
            continue
        p50, p95 = pct(values, 50), pct(values, 95)
        ratio = p95 / base
        if kind not in ("healthz", "sign in", "today"):
            worst = max(worst, ratio)
        print(f"{kind:<12} {len(values):>6} {p50 * 1000:>9.1f} {p95 * 1000:>9.1f} {ratio:>17.1f}x")
    closes = len(stats.times.get("close", []))
    total = sum(len(v) for k, v in stats.times.items() if k != "healthz")
    print(f"{total} requests in {elapsed:.0f} s ({total / elapsed:.1f}/s), {closes} rosters closed")
    print(f"errors: {len(stats.errors)}" + (f" (first: {stats.errors[:5]})" if stats.errors else ""))
    print(f"worst roster-request p95 / healthz p95: {worst:.1f}x (target <= {TARGET_RATIO:.0f}x)")
    print(f'"database is locked" in the server log: {locked}; tracebacks: {tracebacks}')
    print(f"audit verify: {'passed' if verify.returncode == 0 else 'FAILED'}")
    if verify.returncode != 0:
        print(verify.stdout[-2000:], verify.stderr[-2000:])
    if tracebacks or locked:  # what went wrong, from the server's own log (no bodies, no PHI)
        lines = server_log.splitlines()
        for i, line in enumerate(lines):
            if "Traceback" in line or "database unavailable" in line:
                print("server log:", *lines[max(0, i - 1):i + 1][-1:], *[
                    ln for ln in lines[i + 1:i + 40] if not ln.startswith("  ")][:2], sep="\n  ")
                break
    return not stats.errors and verify.returncode == 0 and locked == 0 and tracebacks == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", help="PostgreSQL URL (its schema is dropped and rebuilt)")
    parser.add_argument("--sqlite", action="store_true", help="also run on SQLite")
    parser.add_argument("--tablets", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    if not args.pg and not args.sqlite:
        args.sqlite = True
    ok = True
    with tempfile.TemporaryDirectory(prefix="tablets-bench-") as tmp:
        if args.pg:
            ok &= run("PostgreSQL", args.pg, tablets=args.tablets, seconds=args.seconds,
                      workers=args.workers, threads=1, instance=Path(tmp) / "pg")
        if args.sqlite:
            inst = Path(tmp) / "sqlite"
            ok &= run("SQLite", f"sqlite:///{inst / 'portal.sqlite3'}", tablets=args.tablets,
                      seconds=args.seconds, workers=4, threads=3, instance=inst)
    print("\nRESULT:", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
