#!/usr/bin/env python3
"""Benchmark runner for corio (issue 8): echo servers side by side, then micro-benchmarks.

It builds nothing: scripts/bench.sh builds the release binaries first. It starts each echo
server pinned to CPU 0 (`taskset -c 0`) and the load generator pinned to CPU 1, alternates the
servers A B C A B C over the rounds, samples the server's /proc/PID/stat (utime, stime) and
/proc/PID/status (VmRSS) around the measured window, counts syscalls with `strace -c -f -p`
in a separate pass, runs bench's `micro` binary for tokio and corio, and writes everything
(every run and the medians) to one JSON file that report.py turns into BENCHMARKS.md.

Usage: runner.py [--quick] [--rounds N] [--out FILE] [--servers a,b] [--scenarios a,b]
                 [--no-strace] [--no-micro] [--command TEXT]
"""
import argparse
import json
import re
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# cargo's output directory: $CARGO_TARGET_DIR when set (as cargo itself does), else ./target.
REL = os.path.join(os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")), "release")
PY_ECHO = os.path.join(ROOT, "bench", "py", "echo_asyncio.py")
CLK_TCK = int(subprocess.run(["getconf", "CLK_TCK"], capture_output=True, text=True).stdout.strip() or 100)

MODES = {
    "quick": {
        "rounds": 2,
        "echo1k": {"conns": 100, "size": 1024, "warmup": 0.2, "duration": 0.8},
        "echo64k": {"conns": 50, "size": 65536, "warmup": 0.2, "duration": 0.6, "rounds": 1},
        "conns10k": {"conns": 10000, "size": 1024, "warmup": 0.1, "duration": 0.4, "rounds": 1},
        "strace_duration": 0.6,
        "micro_rounds": 1,
        "micro_sizes": [10_000, 1_000_000],
    },
    "full": {
        "rounds": 3,
        "echo1k": {"conns": 100, "size": 1024, "warmup": 1.0, "duration": 4.0, "rounds": 4},
        "echo64k": {"conns": 50, "size": 65536, "warmup": 0.5, "duration": 2.0},
        "conns10k": {"conns": 10000, "size": 1024, "warmup": 0.5, "duration": 1.5, "rounds": 2},
        "strace_duration": 2.0,
        "micro_rounds": 3,
        "micro_sizes": [10_000, 1_000_000],
    },
}
SCENARIOS = ["echo1k", "echo64k", "conns10k"]
MICRO_BENCHES = ["spawn", "timers", "idle", "xthread", "call_soon", "lock", "queue", "lock_free", "queue_free"]


def log(*a):
    print("[runner]", *a, file=sys.stderr, flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_cpu(pid):
    """(utime, stime) in clock ticks, all threads of the process."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]), int(fields[12])


def sys_cpu():
    """(user+nice+system, steal) ticks over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2], (v[7] if len(v) > 7 else 0)


def proc_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def read_line(proc, timeout):
    """One line of proc's stdout, or None at EOF/timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        ch = os.read(fd, 1)
        if not ch:
            return None
        if ch == b"\n":
            return buf.decode(errors="replace")
        buf += ch


def stop(proc, grace=2.0):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- servers

def server_table(full):
    py = shutil.which("python3") or sys.executable
    echo = os.path.join(REL, "examples", "echo_server")
    s = [
        # The mode is explicit: echo_server's default is `protocol`, and until 2026-11-22 this row
        # ran the protocol server under the "streams" label.
        {"id": "corio", "label": "corio (streams)",
         "candidates": [[echo, "--mode", "streams", "{addr}"], [echo, "{addr}", "--mode", "streams"]]},
        {"id": "corio-protocol", "label": "corio (protocol)",
         "candidates": [[echo, "--mode", "protocol", "{addr}"], [echo, "{addr}", "--mode", "protocol"]]},
        {"id": "tokio", "label": "tokio current_thread", "candidates": [[os.path.join(REL, "echo_tokio"), "{addr}"]]},
        {"id": "smol", "label": "smol", "candidates": [[os.path.join(REL, "echo_smol"), "{addr}"]]},
        {"id": "asyncio-streams", "label": "asyncio streams", "candidates": [[py, PY_ECHO, "{addr}"]]},
        {"id": "asyncio-protocol", "label": "asyncio protocol",
         "candidates": [[py, PY_ECHO, "{addr}", "--mode", "protocol"]]},
        {"id": "uvloop-protocol", "label": "uvloop protocol",
         "candidates": [[py, PY_ECHO, "{addr}", "--mode", "protocol", "--uvloop"]], "needs": "uvloop"},
    ]
    if full:
        s.append({"id": "uvloop-streams", "label": "uvloop streams",
                  "candidates": [[py, PY_ECHO, "{addr}", "--uvloop"]], "needs": "uvloop"})
    return s


def start_server(cmd, errfile):
    argv = ["taskset", "-c", "0"] + [a.replace("{addr}", "127.0.0.1:0") for a in cmd]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errfile, stdin=subprocess.DEVNULL,
                         preexec_fn=raise_nofile)
    line = read_line(p, 10.0)
    if line is None or not line.startswith("listening on "):
        stop(p)
        return None, None
    return p, line[len("listening on "):].strip()


def probe_servers(servers):
    have_uvloop = subprocess.run([shutil.which("python3") or sys.executable, "-c", "import uvloop"],
                                 capture_output=True).returncode == 0
    out = []
    for s in servers:
        s = dict(s)
        s["available"], s["why"], s["cmd"] = False, "", None
        exe = s["candidates"][0][0]
        if s.get("needs") == "uvloop" and not have_uvloop:
            s["why"] = "uvloop not importable (pip install uvloop failed or was skipped)"
        elif not os.path.exists(exe):
            what = "corio's examples/echo_server" if s["id"].startswith("corio") else os.path.basename(exe)
            s["why"] = f"{what} not built (its cargo build failed or was not run: see scripts/bench.sh's output)"
        else:
            for cand in s["candidates"]:
                with tempfile.TemporaryFile() as err:
                    p, addr = start_server(cand, err)
                    if p is not None:
                        stop(p)
                        s["available"], s["cmd"] = True, cand
                        break
                    err.seek(0)
                    s["why"] = "did not print 'listening on ADDR': " + err.read().decode(errors="replace").strip()[-200:]
            if s["id"] == "corio-protocol" and not s["available"]:
                s["why"] = "echo_server does not accept --mode protocol (yet)"
        log(f"server {s['id']}: {'ok' if s['available'] else 'UNAVAILABLE: ' + s['why']}")
        del s["candidates"]
        out.append(s)
    return out


# ---------------------------------------------------------------- echo runs

def parse_strace(path):
    total, per = None, {}
    try:
        with open(path) as f:
            for line in f:
                t = line.split()
                if len(t) < 5 or not t[0][0].isdigit():
                    continue
                name = t[-1]
                calls = int(t[3])
                if name == "total":
                    total = calls
                else:
                    per[name] = calls
    except (OSError, ValueError, IndexError):
        pass
    return total, per


def echo_run(server, cfg, strace_secs=None):
    """One server process, one load generator: the measured window's numbers."""
    res = {"server": server["id"]}
    errf = tempfile.TemporaryFile()
    srv, addr = start_server(server["cmd"], errf)
    if srv is None:
        errf.seek(0)
        res["error"] = "server did not start: " + errf.read().decode(errors="replace")[-200:]
        return res
    lg = strace = None
    lgerr = tempfile.TemporaryFile()

    def lg_stderr():
        lgerr.seek(0)
        return lgerr.read().decode(errors="replace").strip()[-300:]
    try:
        time.sleep(0.05)
        rss0 = proc_rss(srv.pid)
        lg = subprocess.Popen(
            ["taskset", "-c", "1", os.path.join(REL, "loadgen"), "--addr", addr,
             "--conns", str(cfg["conns"]), "--size", str(cfg["size"]),
             "--connect-concurrency", "100", "--control"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=lgerr, preexec_fn=raise_nofile)
        line = read_line(lg, 120.0)
        if line is None:
            res["error"] = "load generator never connected: " + lg_stderr()
            return res
        ev = json.loads(line)
        rss1 = proc_rss(srv.pid)
        res["connect_s"] = ev.get("connect_s")
        res["connect_errors"] = ev.get("errors")
        if ev.get("errors"):
            res["error"] = f"{ev['errors']} of {cfg['conns']} connections failed while connecting: " + lg_stderr()
        res["rss_before"], res["rss_after_connect"] = rss0, rss1
        res["rss_per_conn"] = (rss1 - rss0) / cfg["conns"]
        time.sleep(cfg["warmup"])
        if strace_secs is not None:
            sfile = tempfile.mktemp(prefix="corio-strace-")
            strace = subprocess.Popen(["strace", "-c", "-f", "-p", str(srv.pid), "-o", sfile],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            ok = False
            deadline = time.monotonic() + 10
            fd = strace.stderr.fileno()
            acc = b""
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        break
                    acc += chunk
                    if b"attached" in acc:
                        ok = True
                        break
            if not ok:
                res["error"] = "strace did not attach: " + acc.decode(errors="replace")[-200:]
                return res
            time.sleep(0.1)  # let every thread's attach settle
        lg.stdin.write(b"start\n")
        lg.stdin.flush()
        if read_line(lg, 10.0) is None:
            res["error"] = "load generator did not start"
            return res
        c0, l0, s0 = proc_cpu(srv.pid), proc_cpu(lg.pid), sys_cpu()
        t0 = time.monotonic()
        time.sleep(strace_secs if strace_secs is not None else cfg["duration"])
        c1, l1, s1 = proc_cpu(srv.pid), proc_cpu(lg.pid), sys_cpu()
        t1 = time.monotonic()
        # RSS per connection while every connection is echoing, not only after connect: a
        # buffer allocated lazily (calloc'd pages untouched until the first read) made
        # "after connect" flatter one server than another.
        rss2 = proc_rss(srv.pid)
        res["rss_while_echoing"] = rss2
        res["rss_per_conn"] = (max(rss1, rss2) - rss0) / cfg["conns"]
        lg.stdin.write(b"stop\n")
        lg.stdin.flush()
        line = read_line(lg, 30.0)
        if strace is not None:
            strace.send_signal(signal.SIGINT)
            try:
                strace.wait(timeout=20)
            except subprocess.TimeoutExpired:
                strace.kill()
        if line is None:
            res["error"] = "load generator gave no result"
            return res
        r = json.loads(line)
        res.update({k: r[k] for k in ("rts", "rt_per_s", "mib_per_s", "p50_us", "p99_us", "max_us",
                                      "errors", "conns_ok", "min_rts_per_conn", "secs")})
        rts = max(r["rts"], 1)
        res["cpu_us_per_rt"] = ((c1[0] - c0[0]) + (c1[1] - c0[1])) / CLK_TCK / rts * 1e6
        res["user_us_per_rt"] = (c1[0] - c0[0]) / CLK_TCK / rts * 1e6
        res["server_cpu_pct"] = ((c1[0] - c0[0]) + (c1[1] - c0[1])) / CLK_TCK / (t1 - t0) * 100
        res["loadgen_cpu_pct"] = ((l1[0] - l0[0]) + (l1[1] - l0[1])) / CLK_TCK / (t1 - t0) * 100
        ours = (c1[0] - c0[0]) + (c1[1] - c0[1]) + (l1[0] - l0[0]) + (l1[1] - l0[1])
        # CPU used by every other process on the machine during the window (noise indicator).
        res["other_cpu_pct"] = max(0, (s1[0] - s0[0]) - ours) / CLK_TCK / (t1 - t0) * 100
        res["steal_pct"] = (s1[1] - s0[1]) / CLK_TCK / (t1 - t0) * 100
        res["server_alive"] = srv.poll() is None
        if strace is not None:
            total, per = parse_strace(sfile)
            os.unlink(sfile)
            if total is None:
                res["error"] = "no strace summary"
            else:
                res["syscalls_per_rt"] = total / rts
                res["syscalls_breakdown_per_rt"] = {k: v / rts for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:6]}
        if r["errors"]:
            res["error"] = f"{r['errors']} of {cfg['conns']} connections failed: " + lg_stderr()
        return res
    except (OSError, ValueError, json.JSONDecodeError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
        return res
    finally:
        if strace is not None and strace.poll() is None:
            strace.kill()
        if lg is not None:
            try:
                lg.stdin.close()
            except OSError:
                pass
            stop(lg)
        stop(srv)
        errf.close()
        lgerr.close()


METRICS = ["rt_per_s", "mib_per_s", "cpu_us_per_rt", "user_us_per_rt", "p50_us", "p99_us",
           "rss_per_conn", "server_cpu_pct", "loadgen_cpu_pct", "connect_s", "min_rts_per_conn",
           "syscalls_per_rt", "other_cpu_pct", "steal_pct"]


def summarize(runs, servers):
    out = {}
    for s in servers:
        mine = [r for r in runs if r["server"] == s["id"]]
        good = [r for r in mine if "error" not in r]
        summ = {"runs": len(mine), "ok_runs": len(good), "errors": [r["error"] for r in mine if "error" in r]}
        for m in METRICS:
            vals = [r[m] for r in good if r.get(m) is not None]
            if vals:
                summ[m] = statistics.median(vals)
        # CPU per round trip: the least disturbed round. On these shared machines whole windows
        # run slow (every server's rounds split into ~5.4 and ~7.8 µs/rt, whatever the other
        # processes do), and interference only ever adds time; a median of a few rounds
        # depends on how many slow windows each server drew.
        cpu = [r["cpu_us_per_rt"] for r in good if r.get("cpu_us_per_rt") is not None]
        if cpu:
            summ["cpu_us_per_rt"] = min(cpu)
        # User time comes in 10 ms ticks: a 4 s echo window holds only a few dozen of them
        # (about 6 % of a busy server's time), so one window's figure is off by up to ±20 %
        # and a median of a few keeps that error. Pool the rounds instead: all the user
        # ticks over all the round trips. (Total CPU, hundreds of ticks a window, keeps the
        # least disturbed round, as above.)
        pooled = [r for r in good if r.get("user_us_per_rt") is not None and r.get("rts")]
        if pooled:
            summ["user_us_per_rt"] = (sum(r["user_us_per_rt"] * r["rts"] for r in pooled)
                                      / sum(r["rts"] for r in pooled))
        if any("conns_ok" in r for r in mine):
            summ["all_served"] = bool(mine) and all(
                "error" not in r and r.get("errors") == 0 and r.get("conns_ok") == r.get("conns_expected")
                and r.get("server_alive") for r in mine)
        bd = [r["syscalls_breakdown_per_rt"] for r in good if "syscalls_breakdown_per_rt" in r]
        if bd:
            summ["syscalls_breakdown_per_rt"] = bd[0]
        out[s["id"]] = summ
    return out


# ---------------------------------------------------------------- micro

CALLGRIND_SERVERS = {"protocol": "corio-protocol", "streams": "corio", "tokio": "tokio"}


def callgrind_pass():
    """User-space instructions per echo round trip (1 KiB × 100), by scripts/callgrind_echo.sh:
    the same binary and load give the same count however busy the machine is."""
    env = dict(os.environ, SECS="3")
    try:
        p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "callgrind_echo.sh"), *CALLGRIND_SERVERS],
                           capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        log("callgrind pass timed out")
        return {"error": "timed out after 300 s"}
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"(\w+)\s+(\d+) instructions per round trip \((\d+) round trips\)", line)
        if m:
            out[CALLGRIND_SERVERS[m.group(1)]] = {"instructions_per_rt": int(m.group(2)), "rts": int(m.group(3))}
    if not out:
        out["error"] = f"exit {p.returncode}: " + (p.stderr.strip() or p.stdout.strip())[-300:]
    log(f"callgrind {out}")
    return out


def micro_runs(sizes, rounds, have_micro):
    runs = []
    if not have_micro:
        return runs
    exe = os.path.join(REL, "micro")
    for rnd in range(rounds):
        for n in sizes:
            for b in MICRO_BENCHES:
                for rt in ("tokio", "corio"):
                    cpus = "0,1" if b == "xthread" else "0"
                    try:
                        p = subprocess.run(["taskset", "-c", cpus, exe, "--runtime", rt, "--bench", b, "--n", str(n)],
                                           capture_output=True, text=True, timeout=180)
                        line = (p.stdout.strip().splitlines() or [""])[-1]
                        r = json.loads(line) if line.startswith("{") else {
                            "bench": b, "runtime": rt, "n": n,
                            "error": f"exit {p.returncode}: " + p.stderr.strip()[-300:]}
                    except subprocess.TimeoutExpired:
                        r = {"bench": b, "runtime": rt, "n": n, "error": "timed out after 180 s"}
                    r["round"] = rnd
                    runs.append(r)
                    log(f"micro {b:9} {rt:5} n={n:<8} " + (f"{r['value']:.4g} {r['unit']}" if "value" in r else "ERROR " + r["error"]))
    return runs


def micro_summary(runs):
    out = {}
    for r in runs:
        key = f"{r['bench']}/{r['n']}/{r['runtime']}"
        out.setdefault(key, []).append(r)
    summ = {}
    for key, rs in out.items():
        good = [r for r in rs if "value" in r]
        s = {"runs": len(rs)}
        if good:
            s["value"] = statistics.median(r["value"] for r in good)
            s["unit"] = good[0]["unit"]
            if "early" in good[0]:
                s["early_max"] = max(r["early"] for r in good)
            if "per_s" in good[0]:
                s["per_s"] = statistics.median(r["per_s"] for r in good)
            if "note" in good[0]:
                s["note"] = good[0]["note"]
            if "allocs" in good[0]:
                s["allocs_max"] = max(r["allocs"] for r in good)
        else:
            s["error"] = rs[0].get("error", "no result")
        summ[key] = s
    return summ


# ---------------------------------------------------------------- machine

def machine():
    m = {"nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and "cpu" not in m:
                    m["cpu"] = line.split(":", 1)[1].strip()
                if line.startswith("cpu MHz") and "mhz" not in m:
                    m["mhz"] = line.split(":", 1)[1].strip()
        with open("/proc/meminfo") as f:
            m["mem_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    for tool, args in (("rustc", ["rustc", "--version"]), ("strace", ["strace", "-V"])):
        try:
            m[tool] = subprocess.run(args, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            m[tool] = None
    try:
        import uvloop  # noqa: F401
        m["uvloop"] = uvloop.__version__
    except ImportError:
        m["uvloop"] = None
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "examples", "Cargo.toml"],
                               capture_output=True, text=True).stdout.strip()
        m["corio_rev"] = (rev + (" + uncommitted changes" if dirty else "")) if rev else None
    except OSError:
        m["corio_rev"] = None
    lock = os.path.join(ROOT, "Cargo.lock")
    if os.path.exists(lock):
        name = None
        for line in open(lock):
            if line.startswith("name = "):
                name = line.split('"')[1]
            elif line.startswith("version = ") and name in ("tokio", "smol", "async-io", "polling"):
                m[name] = line.split('"')[1]
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    ap.add_argument("--servers", help="comma-separated server ids (default: all available)")
    ap.add_argument("--scenarios", help="comma-separated: " + ",".join(SCENARIOS + ["strace", "micro", "callgrind"]))
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--no-micro", action="store_true")
    ap.add_argument("--command", default=" ".join(sys.argv))
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    P = MODES[mode]
    rounds = a.rounds or P["rounds"]
    # callgrind (instructions per round trip, stable where CPU time is not): full mode only.
    extra = ["strace", "micro"] + ([] if a.quick else ["callgrind"])
    wanted = set((a.scenarios or ",".join(SCENARIOS + extra)).split(","))
    if a.no_strace:
        wanted.discard("strace")
    if a.no_micro:
        wanted.discard("micro")
    if "callgrind" in wanted and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        log("valgrind not found: callgrind pass skipped")
        wanted.discard("callgrind")
    if "strace" in wanted and not shutil.which("strace"):
        log("strace not found: syscall pass skipped")
        wanted.discard("strace")
    raise_nofile()
    t_start = time.monotonic()
    servers = server_table(full=not a.quick)
    if a.servers:
        keep = set(a.servers.split(","))
        servers = [s for s in servers if s["id"] in keep]
    servers = probe_servers(servers)
    avail = [s for s in servers if s["available"]]
    result = {
        "meta": {"loadavg_start": open("/proc/loadavg").read().split()[:3], "mode": mode, "command": a.command, "rounds": {sc: a.rounds or P[sc].get("rounds", rounds) for sc in SCENARIOS}, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                 "machine": machine(), "clk_tck": CLK_TCK, "params": P},
        "servers": [{k: s[k] for k in ("id", "label", "available", "why")} for s in servers],
        "echo": {},
        "micro": {},
    }
    for sc in SCENARIOS:
        if sc not in wanted:
            continue
        cfg = P[sc]
        runs = []
        for rnd in range(a.rounds or cfg.get("rounds", rounds)):
            for s in avail:
                r = echo_run(s, cfg)
                r["round"] = rnd
                r["conns_expected"] = cfg["conns"]
                runs.append(r)
                log(f"{sc} round {rnd} {s['id']:17} " + (
                    f"{r.get('rt_per_s', 0):9.0f} rt/s  cpu {r.get('cpu_us_per_rt', 0):6.2f} us/rt  "
                    f"user {r.get('user_us_per_rt', 0):5.2f}  p99 {r.get('p99_us', 0):8.1f} us  "
                    f"rss/conn {r.get('rss_per_conn', 0):7.0f} B  lg {r.get('loadgen_cpu_pct', 0):3.0f}%"
                    + (f"  ERROR {r['error']}" if "error" in r else "")))
        result["echo"][sc] = {"config": cfg, "runs": runs, "summary": summarize(runs, servers)}
    if "strace" in wanted:
        cfg = dict(P["echo1k"])
        runs = []
        for s in avail:
            r = echo_run(s, cfg, strace_secs=P["strace_duration"])
            r["round"] = 0
            runs.append(r)
            log(f"strace {s['id']:17} " + (f"{r['syscalls_per_rt']:.2f} syscalls/rt {r.get('syscalls_breakdown_per_rt')}"
                                            if "syscalls_per_rt" in r else "ERROR " + r.get("error", "?")))
        result["echo"]["strace"] = {"config": dict(cfg, duration=P["strace_duration"]), "runs": runs,
                                    "summary": summarize(runs, servers)}
    if "callgrind" in wanted:
        result["echo"]["callgrind"] = callgrind_pass()
    if "micro" in wanted:
        mruns = micro_runs(P["micro_sizes"], P["micro_rounds"], os.path.exists(os.path.join(REL, "micro")))
        result["micro"] = {"sizes": P["micro_sizes"], "rounds": P["micro_rounds"], "runs": mruns,
                           "summary": micro_summary(mruns)}
    result["meta"]["elapsed_s"] = round(time.monotonic() - t_start, 1)
    result["meta"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {a.out} in {result['meta']['elapsed_s']} s")


if __name__ == "__main__":
    main()
