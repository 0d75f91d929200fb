#!/usr/bin/env python3
"""Turn the runner's JSON into BENCHMARKS.md and bench/ratios.svg (hand-written SVG).

Usage: report.py [RESULTS_JSON] [--md BENCHMARKS.md] [--svg bench/ratios.svg]

Every target of issue 8 gets a row with its measured value, its ratio to tokio
current_thread measured in the same run, and met / MISSED; a target that could not be
measured is MISSED with the reason. A hand-written reason for a missed target can be added
in bench/reasons.json ({"target id": "why"}); it is shown next to the automatic one.
"""
import argparse
import html
import json
import os
import sys

HALO = 'paint-order="stroke" stroke="white" stroke-width="3"'
SYM = {"<=": "≤", ">=": "≥"}
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int) or abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def rounds_text(r):
    if isinstance(r, dict):
        return ", ".join(f"{k}: {v}" for k, v in r.items())
    return str(r)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Report:
    def __init__(self, res, reasons):
        self.res = res
        self.reasons = reasons
        self.servers = {s["id"]: s for s in res["servers"]}
        self.targets = []

    def echo(self, sc, server, metric):
        return self.res.get("echo", {}).get(sc, {}).get("summary", {}).get(server, {}).get(metric)

    def micro(self, bench, n, rt):
        return self.res.get("micro", {}).get("summary", {}).get(f"{bench}/{n}/{rt}", {})

    def why_missing(self, *servers):
        for s in servers:
            info = self.servers.get(s)
            if info is None:
                return f"{s} was not part of this run"
            if not info["available"]:
                return f"{s}: {info['why']}"
        return "no successful run (see Errors below)"

    def add(self, tid, group, name, value, base, goal, op, unit="", absolute=False, missing=None):
        """op '<=' or '>=': on the ratio value/base, or on value itself if absolute."""
        r = value if absolute else ratio(value, base)
        if r is None:
            status, reason = "MISSED", "not measured: " + (missing or "no value")
        else:
            ok = r <= goal if op == "<=" else r >= goal
            status = "met" if ok else "MISSED"
            reason = "" if ok else f"{'value' if absolute else 'ratio'} {r:.3f} is not {SYM[op]} {goal}"
        if tid in self.reasons and status != "met":
            reason = (reason + "; " if reason else "") + self.reasons[tid]
        self.targets.append({"id": tid, "group": group, "name": name, "value": value, "base": base,
                             "ratio": None if absolute else r, "goal": goal, "op": op, "unit": unit,
                             "absolute": absolute, "status": status, "reason": reason})

    def add_bool(self, tid, group, name, ok, detail, missing=None):
        if ok is None:
            status, reason = "MISSED", "not measured: " + (missing or "no value")
        else:
            status, reason = ("met", "") if ok else ("MISSED", detail)
        if tid in self.reasons and status != "met":
            reason = (reason + "; " if reason else "") + self.reasons[tid]
        self.targets.append({"id": tid, "group": group, "name": name, "value": ok, "base": None, "ratio": None,
                             "goal": None, "op": "", "unit": "", "absolute": True, "status": status,
                             "reason": reason, "detail": detail})

    def build_targets(self):
        e = self.echo
        for srv, lab in (("corio", "streams"), ("corio-protocol", "protocol")):
            miss = self.why_missing(srv, "tokio")
            self.add(f"echo1k-cpu-{lab}", "echo 1 KiB × 100", f"server CPU µs/rt, {lab} server, vs tokio",
                     e("echo1k", srv, "cpu_us_per_rt"), e("echo1k", "tokio", "cpu_us_per_rt"), 0.95, "<=", "µs", missing=miss)
            self.add(f"echo1k-user-{lab}", "echo 1 KiB × 100", f"user CPU µs/rt, {lab} server, vs tokio",
                     e("echo1k", srv, "user_us_per_rt"), e("echo1k", "tokio", "user_us_per_rt"), 0.8, "<=", "µs", missing=miss)
            cg = self.res.get("echo", {}).get("callgrind", {})
            mine, theirs = cg.get(srv, {}).get("instructions_per_rt"), cg.get("tokio", {}).get("instructions_per_rt")
            if mine and theirs:
                t = self.targets[-1]
                t["reason"] = (t["reason"] + "; " if t["reason"] else "") + (
                    f"callgrind, same run: {mine} user-space instructions per round trip against tokio's "
                    f"{theirs} ({mine / theirs:.2f})")
            self.add(f"echo1k-syscalls-{lab}", "echo 1 KiB × 100", f"syscalls per round trip, {lab} server (absolute; floor 2)",
                     e("strace", srv, "syscalls_per_rt"), e("strace", "tokio", "syscalls_per_rt"), 2.3, "<=", "",
                     absolute=True, missing=self.why_missing(srv) if "strace" in self.res.get("echo", {}) else "syscall pass not run (no strace)")
        self.add("echo1k-vs-asyncio", "echo 1 KiB × 100", "server CPU µs/rt vs asyncio streams",
                 e("echo1k", "corio", "cpu_us_per_rt"), e("echo1k", "asyncio-streams", "cpu_us_per_rt"), 0.5, "<=", "µs",
                 missing=self.why_missing("corio", "asyncio-streams"))
        # Like for like: corio's protocol server against uvloop's protocol server.
        self.add("echo1k-vs-uvloop", "echo 1 KiB × 100", "server CPU µs/rt, protocol server, vs uvloop protocol",
                 e("echo1k", "corio-protocol", "cpu_us_per_rt"), e("echo1k", "uvloop-protocol", "cpu_us_per_rt"), 0.85, "<=", "µs",
                 missing=self.why_missing("corio-protocol", "uvloop-protocol"))
        # Both servers must be fast (issue 5), so each target below holds for each of them.
        for srv, lab in (("corio", "streams"), ("corio-protocol", "protocol")):
            self.add(f"echo64k-throughput-{lab}", "echo 64 KiB × 50", f"throughput (round trips/s), {lab} server, vs tokio",
                     e("echo64k", srv, "rt_per_s"), e("echo64k", "tokio", "rt_per_s"), 1.0, ">=", "rt/s",
                     missing=self.why_missing(srv, "tokio"))
        for srv, lab in (("corio", "streams"), ("corio-protocol", "protocol")):
            served = e("conns10k", srv, "all_served")
            errs = self.res.get("echo", {}).get("conns10k", {}).get("summary", {}).get(srv, {}).get("errors", [])
            self.add_bool(f"conns10k-served-{lab}", "10 000 connections", f"all 10 000 connections served, {lab} server (every run)",
                          served, "; ".join(errs[:2]) or "a run had failed connections or the server died",
                          missing=self.why_missing(srv))
            self.add(f"conns10k-memory-{lab}", "10 000 connections", f"server RSS per connection, {lab} server, vs tokio",
                     e("conns10k", srv, "rss_per_conn"), e("conns10k", "tokio", "rss_per_conn"), 1.0, "<=", "B",
                     missing=self.why_missing(srv, "tokio"))
        sizes = self.res.get("micro", {}).get("sizes", [])
        big = max(sizes) if sizes else 1_000_000
        micro_missing = "micro-benchmarks not run" if not sizes else None

        def mm(bench, n):
            c, t = self.micro(bench, n, "corio"), self.micro(bench, n, "tokio")
            miss = micro_missing or c.get("error") or t.get("error") or "no value"
            return c.get("value"), t.get("value"), miss
        for n in sizes or [big]:
            c, t, miss = mm("spawn", n)
            self.add(f"spawn-{n}", "tasks", f"spawn+await, N = {n:,}, vs tokio", c, t, 0.7, "<=", "µs/task", missing=miss)
        c, t, miss = mm("timers", big)
        self.add(f"timers-{big}", "timers", f"{big:,} timers (time beyond 100 ms), vs tokio", c, t, 0.7, "<=", "µs/timer", missing=miss)
        early = [self.micro("timers", n, "corio").get("early_max") for n in (sizes or [big])]
        early_ok = None if any(x is None for x in early) else all(x == 0 for x in early)
        self.add_bool("timers-none-early", "timers", "no timer fires early (every size, every run)", early_ok,
                      f"timers fired early: {early}", missing=mm("timers", big)[2])
        c, t, miss = mm("idle", big)
        self.add(f"idle-{big}", "tasks", f"memory per idle task, N = {big:,}, vs tokio", c, t, 0.5, "<=", "B/task", missing=miss)
        c, t, miss = mm("xthread", big)
        self.add(f"xthread-{big}", "wake-ups", f"cross-thread wake, N = {big:,}, vs tokio", c, t, 1.0, "<=", "ns/msg", missing=miss)
        # Issue 4: uncontended operations allocate nothing (a queue's buffer, once, is not
        # per operation: at most one allocation in the whole run).
        for b, what in (("lock_free", "Lock acquire + release"), ("queue_free", "Queue put + get")):
            allocs = self.micro(b, big, "corio").get("allocs_max")
            self.add_bool(f"{b}-allocs", "sync (issue 4)", f"uncontended {what}: no allocation per operation, N = {big:,}",
                          None if allocs is None else allocs <= 1, f"{allocs} allocations in {big:,} operations",
                          missing=mm(b, big)[2])

    # ------------------------------------------------------------ markdown
    def markdown(self, svg_rel):
        res, meta = self.res, self.res["meta"]
        m = meta.get("machine", {})
        L = []
        w = L.append
        w("# corio benchmarks")
        w("")
        w("<!-- Generated by bench/py/report.py from bench/results/latest.json; do not edit by hand. -->")
        w("")
        w(f"Side by side with tokio current_thread, smol, asyncio and uvloop, in one run ({meta['mode']} mode, "
          f"{meta.get('started', '?')}, {meta.get('elapsed_s', '?')} s). Every target is a ratio to tokio "
          "current_thread measured in the same run: absolute numbers on these shared 2-core machines drift "
          "by ±30 % between runs.")
        w("")
        w(f"Command: `{meta.get('command', 'scripts/bench.sh')}`")
        w("")
        w("## Machine")
        w("")
        w(f"- CPU: {m.get('cpu', '?')} ({m.get('mhz', '?')} MHz), `nproc` = {m.get('nproc', '?')}, "
          f"{m.get('mem_gib', '?')} GiB RAM; kernel {m.get('kernel', '?')}")
        w(f"- corio revision: {m.get('corio_rev') or 'unknown (not a git checkout)'}")
        w(f"- {m.get('rustc') or 'rustc ?'}; tokio {m.get('tokio', '?')}, smol {m.get('smol', '?')} "
          f"(async-io {m.get('async-io', '?')}, polling {m.get('polling', '?')}); Python {m.get('python', '?')}, "
          f"uvloop {m.get('uvloop') or 'not installed'}; {m.get('strace') or 'strace not installed'}")
        la0, la1 = meta.get("loadavg_start"), meta.get("loadavg_end")
        if la0:
            w(f"- Load average (1, 5, 15 min) at the start {' '.join(la0)}, at the end {' '.join(la1 or ['?'])}")
        w("- Echo servers pinned to CPU 0 (`taskset -c 0`), the load generator to CPU 1; servers alternate "
          f"A B C A B C over the rounds ({rounds_text(meta.get('rounds'))}); each figure is the median over the rounds, except CPU per round trip (the least disturbed round) and user CPU per round trip (pooled over the rounds): see 'How it is measured'.")
        w("")
        w("## Targets (issue 8)")
        w("")
        w(f"![ratios to tokio current_thread]({svg_rel})")
        w("")
        w("| group | target | corio | baseline | ratio | goal | status | reason |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for t in self.targets:
            if t["goal"] is None:
                val = fmt(t["value"]) if t["value"] is not None else "–"
                w(f"| {t['group']} | {t['name']} | {val} | – | – | yes | **{t['status']}** | {t['reason']} |")
                continue
            unit = f" {t['unit']}" if t["unit"] else ""
            val = (fmt(t["value"]) + unit) if t["value"] is not None else "–"
            base = (fmt(t["base"]) + unit) if t["base"] is not None else "–"
            goal = f"{SYM[t['op']]} {t['goal']}"
            if t["absolute"]:
                base = f"tokio {base}"
            r = fmt(t["ratio"]) if t["ratio"] is not None else ("(absolute)" if t["absolute"] else "–")
            w(f"| {t['group']} | {t['name']} | {val} | {base} | {r} | {goal} | **{t['status']}** | {t['reason']} |")
        met = sum(t["status"] == "met" for t in self.targets)
        w("")
        w(f"{met} of {len(self.targets)} targets met.")
        w("")
        self.md_echo(w)
        self.md_micro(w)
        self.md_notes(w)
        return "\n".join(L) + "\n"

    def server_rows(self, sc):
        summ = self.res.get("echo", {}).get(sc, {}).get("summary", {})
        return [(s["id"], s["label"], summ.get(s["id"], {})) for s in self.res["servers"] if s["available"]]

    def md_echo(self, w):
        echo = self.res.get("echo", {})
        if "echo1k" in echo:
            c = echo["echo1k"]["config"]
            w(f"## Echo, 1 KiB × {c['conns']} connections")
            w("")
            w(f"Each connection sends {c['size']} bytes and waits for the whole echo before the next "
              f"(uvloop's echo client protocol). Window {c['duration']} s after {c['warmup']} s of warm-up. "
              "CPU = the server's utime+stime from /proc/PID/stat over the window; syscalls from a separate "
              "`strace -c -f -p` pass.")
            w("")
            w("| server | round trips/s | CPU µs/rt | user µs/rt | syscalls/rt | p50 µs | p99 µs | CPU/rt vs tokio | user/rt vs tokio | rt/s vs tokio | server CPU % | loadgen CPU % | other procs CPU % | runs ok |")
            w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            tk = echo["echo1k"]["summary"].get("tokio", {})
            st = echo.get("strace", {}).get("summary", {})
            for sid, label, s in self.server_rows("echo1k"):
                w(f"| {label} | {fmt(s.get('rt_per_s'))} | {fmt(s.get('cpu_us_per_rt'))} | {fmt(s.get('user_us_per_rt'))} | "
                  f"{fmt(st.get(sid, {}).get('syscalls_per_rt'))} | {fmt(s.get('p50_us'))} | {fmt(s.get('p99_us'))} | "
                  f"{fmt(ratio(s.get('cpu_us_per_rt'), tk.get('cpu_us_per_rt')))} | "
                  f"{fmt(ratio(s.get('user_us_per_rt'), tk.get('user_us_per_rt')))} | "
                  f"{fmt(ratio(s.get('rt_per_s'), tk.get('rt_per_s')))} | {fmt(s.get('server_cpu_pct'), 0)} | "
                  f"{fmt(s.get('loadgen_cpu_pct'), 0)} | {fmt(s.get('other_cpu_pct'), 0)} | {s.get('ok_runs', 0)}/{s.get('runs', 0)} |")
            w("")
            w("Server and loadgen CPU % are utime+stime of each process over the window (the kernel's softirq "
              "work for loopback TCP is counted in neither); \"other procs\" is the CPU every other process on "
              "the machine used meanwhile: a high figure means the run was disturbed.")
            w("")
            if st:
                w("Syscalls per round trip by call (strace pass, top six):")
                w("")
                w("| server | syscalls/rt | breakdown |")
                w("| --- | --- | --- |")
                for sid, label, _ in self.server_rows("strace"):
                    s = st.get(sid, {})
                    bd = ", ".join(f"{k} {v:.2f}" for k, v in s.get("syscalls_breakdown_per_rt", {}).items())
                    w(f"| {label} | {fmt(s.get('syscalls_per_rt'))} | {bd or '–'} |")
                w("")
        cg = echo.get("callgrind", {})
        if cg:
            w("User-space instructions per round trip (`scripts/callgrind_echo.sh`: callgrind counts from the "
              "start to the end of a 3 s load window, 1 KiB × 100; the same binary and load give the same count "
              "however busy the machine is, unlike the user CPU time above, which comes in 10 ms ticks):")
            w("")
            w("| server | instructions per round trip | vs tokio |")
            w("| --- | --- | --- |")
            tk = cg.get("tokio", {}).get("instructions_per_rt")
            for sid, label in (("corio-protocol", "corio (protocol)"), ("corio", "corio (streams)"), ("tokio", "tokio current_thread")):
                v = cg.get(sid, {}).get("instructions_per_rt")
                w(f"| {label} | {fmt(v)} | {fmt(ratio(v, tk))} |")
            if "error" in cg:
                w(f"| (error) | {cg['error']} | |")
            w("")
        if "echo64k" in echo:
            c = echo["echo64k"]["config"]
            w(f"## Echo, 64 KiB × {c['conns']} connections (throughput)")
            w("")
            w("| server | round trips/s | MiB/s each way | CPU µs/rt | p99 µs | throughput vs tokio | CPU/rt vs tokio | runs ok |")
            w("| --- | --- | --- | --- | --- | --- | --- | --- |")
            tk = echo["echo64k"]["summary"].get("tokio", {})
            for sid, label, s in self.server_rows("echo64k"):
                w(f"| {label} | {fmt(s.get('rt_per_s'))} | {fmt(s.get('mib_per_s'))} | {fmt(s.get('cpu_us_per_rt'))} | "
                  f"{fmt(s.get('p99_us'))} | {fmt(ratio(s.get('rt_per_s'), tk.get('rt_per_s')))} | "
                  f"{fmt(ratio(s.get('cpu_us_per_rt'), tk.get('cpu_us_per_rt')))} | {s.get('ok_runs', 0)}/{s.get('runs', 0)} |")
            w("")
        if "conns10k" in echo:
            c = echo["conns10k"]["config"]
            w(f"## {c['conns']:,} connections")
            w("")
            w("The load generator opens every connection (100 connects in flight), makes one round trip on each, "
              "then all of them loop for the window. RSS per connection = (the larger of the server's VmRSS after every connection "
              "made its first round trip and at the end of the window, while all of them echo − VmRSS before the first "
              "connect) / connections. (Until 2026-11-22 only the first was taken, which flattered servers whose "
              "buffers are touched lazily.)")
            w("")
            w("| server | all served | RSS per conn (B) | vs tokio | connect + first rt (s) | round trips/s | min rts per conn in window | p99 µs | runs ok |")
            w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            tk = echo["conns10k"]["summary"].get("tokio", {})
            for sid, label, s in self.server_rows("conns10k"):
                w(f"| {label} | {fmt(s.get('all_served'))} | {fmt(s.get('rss_per_conn'))} | "
                  f"{fmt(ratio(s.get('rss_per_conn'), tk.get('rss_per_conn')))} | {fmt(s.get('connect_s'))} | "
                  f"{fmt(s.get('rt_per_s'))} | {fmt(s.get('min_rts_per_conn'))} | {fmt(s.get('p99_us'))} | "
                  f"{s.get('ok_runs', 0)}/{s.get('runs', 0)} |")
            w("")

    def md_micro(self, w):
        mic = self.res.get("micro", {})
        if not mic.get("sizes"):
            return
        w("## Micro-benchmarks (tokio current_thread + LocalSet vs corio, same process shape)")
        w("")
        w(f"One benchmark per process (`target/release/micro`), pinned to CPU 0 (cross-thread: loop on CPU 0, "
          f"sender on CPU 1); median of {mic.get('rounds')} runs. Lower is better everywhere.")
        w("")
        w("| benchmark | N | tokio | corio | corio / tokio | target | status |")
        w("| --- | --- | --- | --- | --- | --- | --- |")
        names = {"spawn": "spawn + await a trivial task", "timers": "N timers within 100 ms (time beyond 100 ms)",
                 "idle": "memory per idle task (sleeping)", "xthread": "cross-thread wake",
                 "call_soon": "call_soon callback", "lock": "Lock hand-off", "queue": "Queue hand-off (capacity 1)",
                 "lock_free": "Lock acquire + release, uncontended",
                 "queue_free": "Queue put + get, uncontended"}
        goals = {"spawn": 0.7, "timers": 0.7, "idle": 0.5, "xthread": 1.0}
        big = max(mic["sizes"])
        for b in ["spawn", "timers", "idle", "xthread", "call_soon", "lock", "queue", "lock_free", "queue_free"]:
            for n in mic["sizes"]:
                t, c = self.micro(b, n, "tokio"), self.micro(b, n, "corio")
                unit = t.get("unit") or c.get("unit") or ""
                tv = f"{fmt(t['value'])} {unit}" if "value" in t else f"error: {t.get('error', 'not run')}"
                if "value" in c:
                    cv = f"{fmt(c['value'])} {unit}"
                    if b == "timers":
                        cv += f" ({c.get('early_max', '?')} early)"
                        tv += f" ({t.get('early_max', '?')} early)" if "value" in t else ""
                else:
                    err = c.get("error", "not run")
                    cv = f"error: {err}"
                for d, v in ((t, "tv"), (c, "cv")):
                    if "allocs_max" in d:
                        k = d["allocs_max"]
                        extra = f", {k:,} allocation{'' if k == 1 else 's'} in all"
                        if v == "tv":
                            tv += extra
                        else:
                            cv += extra
                if b == "call_soon":
                    if "per_s" in t:
                        tv += f" ({fmt(t['per_s'])}/s; spawn_local of a no-op, the nearest analogue: tokio has no call_soon)"
                    if "per_s" in c:
                        cv += f" ({fmt(c['per_s'])}/s)"
                r = ratio(c.get("value"), t.get("value"))
                goal = goals.get(b)
                checked = goal is not None and (b == "spawn" or n == big)
                if checked:
                    st = "–" if r is None else ("met" if r <= goal else "MISSED")
                    if r is None:
                        st = "MISSED (not measured)"
                    gl = f"≤ {goal}"
                else:
                    st, gl = "", ""
                w(f"| {names[b]} | {n:,} | {tv} | {cv} | {fmt(r)} | {gl} | {st} |")
        w("")

    def md_notes(self, w):
        un = [s for s in self.res["servers"] if not s["available"]]
        if un:
            w("## Servers not measured")
            w("")
            for s in un:
                w(f"- {s['label']}: {s['why']}")
            w("")
        errs = []
        for sc, d in self.res.get("echo", {}).items():
            for r in d.get("runs", []):
                if "error" in r:
                    errs.append(f"- {sc}, round {r.get('round')}, {r['server']}: {r['error']}")
        for r in self.res.get("micro", {}).get("runs", []):
            if "error" in r:
                errs.append(f"- micro {r['bench']} {r['runtime']} N={r['n']}: {r['error']}")
        if errs:
            w("## Errors")
            w("")
            L = errs[:40]
            w("\n".join(L))
            if len(errs) > 40:
                w(f"- … and {len(errs) - 40} more (see bench/results/latest.json)")
            w("")
        w("## How it is measured")
        w("")
        w("- `scripts/bench.sh [--quick]` builds `cargo build --release -p bench --bins` and "
          "`cargo build --release --example echo_server`, then runs `bench/py/runner.py` (raw results in "
          "`bench/results/latest.json`) and `bench/py/report.py` (this file and `bench/ratios.svg`).")
        w("- Echo servers have the same shape: accept loop, one task per connection, a 16 KiB buffer, "
          "read → write_all until EOF, TCP_NODELAY (`bench/src/bin/echo_tokio.rs`, `echo_smol.rs`, "
          "`bench/py/echo_asyncio.py`, corio's `examples/echo_server.rs`).")
        w("- Load: `bench/src/bin/loadgen.rs` (tokio current_thread, one core): N connections, each sends "
          "S bytes and waits for the whole echo, verified byte for byte, before the next.")
        w("- Server CPU per round trip: delta of utime+stime in /proc/PID/stat over the window (ticks of "
          "`getconf CLK_TCK`) / round trips, from the least disturbed round (whole windows run slow on "
          "these shared machines, ~5.4 against ~7.8 µs/rt for every server, and interference only adds "
          "time; other columns are medians); the kernel's softirq work for loopback TCP is not in it. user µs/rt: utime only, pooled over the rounds (all user ticks / all "
          "round trips): a 4 s window holds only a few dozen 10 ms user ticks, so a single window is off by "
          "up to ±20 % and a median keeps that error. Quick-mode windows are coarser still. Callgrind's "
          "instruction counts (full mode) are the stable cross-check.")
        w("- Syscalls per round trip: `strace -c -f -p PID` attached for a separate window (strace slows the "
          "server; that pass gives counts only). The syscall target is absolute (the floor is 2: one read, one write).")
        w("- Ratios are corio / peer; for throughput higher is better, for everything else lower is better.")
        w("")

    # ------------------------------------------------------------ svg
    def svg(self):
        rows = []
        for t in self.targets:
            if t["ratio"] is not None or (not t["absolute"] and t["goal"] is not None):
                rows.append((t["name"], t["ratio"], t["goal"], t["op"], t["status"]))
        tk = self.res.get("echo", {}).get("echo1k", {}).get("summary", {}).get("tokio", {})
        peers = []
        for sid, label, s in self.server_rows("echo1k"):
            peers.append((label, ratio(s.get("cpu_us_per_rt"), tk.get("cpu_us_per_rt")), sid))
        W, left, right, rowh = 860, 430, 20, 22
        top1 = 50
        top2 = top1 + len(rows) * rowh + 60
        H = top2 + len(peers) * rowh + 40
        xmax = 2.0
        for _, r, *_ in rows + [(p[0], p[1]) for p in peers]:
            if r is not None:
                xmax = max(xmax, min(r * 1.05, 3.0))
        plotw = W - left - right - 50

        def X(v):
            return left + min(v, xmax) / xmax * plotw
        o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="10" y="22" font-size="15" font-weight="bold">corio: ratios to tokio current_thread, same run '
             f'({html.escape(self.res["meta"]["mode"])} mode)</text>',
             f'<text x="10" y="{top1 - 8}" font-weight="bold">Targets (green met, red missed; black tick = goal)</text>']

        def axis(y0, y1):
            for k in range(0, int(xmax * 2) + 1):
                v = k / 2
                o.append(f'<line x1="{X(v):.1f}" y1="{y0}" x2="{X(v):.1f}" y2="{y1}" stroke="#ddd"/>')
                o.append(f'<text x="{X(v):.1f}" y="{y1 + 12}" text-anchor="middle" fill="#666">{v:g}</text>')
            o.append(f'<line x1="{X(1):.1f}" y1="{y0}" x2="{X(1):.1f}" y2="{y1}" stroke="#888" stroke-dasharray="4 3"/>')
        axis(top1, top1 + len(rows) * rowh)
        for i, (name, r, goal, op, status) in enumerate(rows):
            y = top1 + i * rowh
            o.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(name)} ({SYM.get(op, op)} {goal})</text>')
            if r is None:
                o.append(f'<text x="{left + 4}" y="{y + 15}" fill="#c00">not measured</text>')
            else:
                col = "#2a9d3a" if status == "met" else "#d03030"
                o.append(f'<rect x="{left}" y="{y + 4}" width="{max(X(r) - left, 1):.1f}" height="{rowh - 8}" fill="{col}"/>')
            o.append(f'<line x1="{X(goal):.1f}" y1="{y + 1}" x2="{X(goal):.1f}" y2="{y + rowh - 1}" stroke="black" stroke-width="2"/>')
            if r is not None:
                o.append(f'<text x="{X(r) + 4:.1f}" y="{y + 15}" {HALO}>{r:.2f}{"+" if r > xmax else ""}</text>')
        o.append(f'<text x="10" y="{top2 - 8}" font-weight="bold">Echo 1 KiB × 100: server CPU per round trip, every server / tokio (lower is better)</text>')
        axis(top2, top2 + len(peers) * rowh)
        for i, (label, r, sid) in enumerate(peers):
            y = top2 + i * rowh
            o.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>')
            if r is None:
                o.append(f'<text x="{left + 4}" y="{y + 15}" fill="#c00">no result</text>')
                continue
            col = "#3060c0" if sid.startswith("corio") else ("#999" if sid == "tokio" else "#b8b8d8")
            o.append(f'<rect x="{left}" y="{y + 4}" width="{max(X(r) - left, 1):.1f}" height="{rowh - 8}" fill="{col}"/>')
            o.append(f'<text x="{X(r) + 4:.1f}" y="{y + 15}" {HALO}>{r:.2f}{"+" if r > xmax else ""}</text>')
        o.append("</svg>")
        return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "bench", "ratios.svg"))
    a = ap.parse_args()
    with open(a.results) as f:
        res = json.load(f)
    reasons = {}
    rp = os.path.join(ROOT, "bench", "reasons.json")
    if os.path.exists(rp):
        with open(rp) as f:
            reasons = json.load(f)
    rep = Report(res, reasons)
    rep.build_targets()
    svg_rel = os.path.relpath(a.svg, os.path.dirname(os.path.abspath(a.md)))
    with open(a.md, "w") as f:
        f.write(rep.markdown(svg_rel))
    with open(a.svg, "w") as f:
        f.write(rep.svg())
    met = sum(t["status"] == "met" for t in rep.targets)
    print(f"[report] {a.md}: {met}/{len(rep.targets)} targets met; chart {a.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
