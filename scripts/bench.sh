#!/usr/bin/env bash
# The one command for issue 8's benchmarks: corio side by side with tokio current_thread,
# smol, asyncio and uvloop, in one run, as ratios.
#
#   scripts/bench.sh            full run  (< 10 min on the 2-core machines)
#   scripts/bench.sh --quick    quick run (< 2 min once built)
#
# Extra arguments go to bench/py/runner.py (e.g. --servers tokio,corio --scenarios echo1k).
# Writes BENCHMARKS.md, bench/ratios.svg and the raw bench/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CMD="scripts/bench.sh${*:+ $*}"
[ -n "${CARGO_TARGET_DIR:-}" ] && CMD="CARGO_TARGET_DIR=$CARGO_TARGET_DIR $CMD"
say() { printf '[bench.sh] %s\n' "$*" >&2; }
t0=$(date +%s)

# --- tools ------------------------------------------------------------------------------
# need TOOL WHAT: install the Debian package TOOL when missing (root + apt), or say that WHAT
# will be skipped.
need() {
    command -v "$1" >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing $1 ($2)"
        (apt-get install -y -qq "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$1" >/dev/null 2>&1; }) \
            || say "could not install $1: $2 will be skipped"
    else
        say "$1 missing and not root: $2 will be skipped"
    fi
}
need strace "the syscall pass"
need valgrind "the callgrind pass of full mode"
for t in taskset getconf python3 cargo; do
    command -v "$t" >/dev/null 2>&1 || { say "required tool missing: $t"; exit 1; }
done
if ! python3 -c 'import uvloop' >/dev/null 2>&1; then
    say "uvloop not importable: trying pip install uvloop (best effort)"
    timeout 120 python3 -m pip install -q uvloop >/dev/null 2>&1 || say "uvloop unavailable: its rows will say so"
fi

# --- build --------------------------------------------------------------------------------
# corio may not build at every moment of its life; the peers must still be measured then.
say "building bench binaries (release)"
if ! cargo build --release -q -p bench --bins; then
    say "bench with corio failed to build: building the peers only (--no-default-features)"
    cargo build --release -q -p bench --bins --no-default-features
fi
say "building corio's echo_server example (release)"
if ! cargo build --release -q --example echo_server; then
    say "corio's echo_server did not build: its rows will say so"
    rm -f "${CARGO_TARGET_DIR:-target}/release/examples/echo_server"
fi
tb=$(date +%s)
say "build took $((tb - t0)) s"

# --- run ----------------------------------------------------------------------------------
python3 bench/py/runner.py --command "$CMD" "$@"
python3 bench/py/report.py
say "done in $(( $(date +%s) - t0 )) s: BENCHMARKS.md, bench/ratios.svg, bench/results/latest.json"
