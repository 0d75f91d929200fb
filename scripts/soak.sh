#!/usr/bin/env bash
# Soak test for corio's echo server (issue 9). Not run by CI.
#
# Starts the release echo server and drives it with 10 000 connections of mixed message sizes
# (four loadgen processes: 64 B, 512 B, 4 KiB, 32 KiB, 2 500 connections each) for DURATION
# seconds after a warm-up round. Reports errors, the server's RSS after warm-up and at the
# end, peak RSS during the run, and its open fds at the end vs after warm-up.
#
# Pass criteria (issue 9): 0 errors, end RSS within 10 % of the post-warm-up RSS, and the
# same number of open fds at the end as at the start (both measured with no client
# connected, so a leaked socket shows).
#
# Usage: scripts/soak.sh [DURATION_SECS]   (default 300)
# Env:   SOAK_CONNS (default 10000), SOAK_MODE (echo_server --mode, default protocol),
#        SOAK_WARMUP (seconds, default 30), SOAK_SERVER_ARGS (extra echo_server flags).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-300}
CONNS=${SOAK_CONNS:-10000}
MODE=${SOAK_MODE:-protocol}
WARMUP=${SOAK_WARMUP:-30}
SIZES=(64 512 4096 32768)
PER=$((CONNS / ${#SIZES[@]}))

# 10 000 client sockets in this process tree plus 10 000 in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((PER + 100)) ]]; then
    echo "soak.sh: open-file limit $(ulimit -n) is too low for $PER connections per client" >&2
    exit 1
fi

echo "soak.sh: building release binaries"
cargo build --release -q --example echo_server
cargo build --release -q -p bench --bins

WORK=$(mktemp -d -t corio-soak.XXXXXX)
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck disable=SC2086
target/release/examples/echo_server 127.0.0.1:0 --mode "$MODE" ${SOAK_SERVER_ARGS:-} \
    >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on //p' "$WORK/server.out")
    [[ -n $ADDR ]] && break
    sleep 0.1
done
[[ -n $ADDR ]] || { echo "soak.sh: the server did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
fds() { ls "/proc/$SERVER_PID/fd" | wc -l; }
# Waits (up to 30 s) until the server holds no client connection: fds stop changing.
settle() {
    local last=-1 now i
    for i in $(seq 1 60); do
        now=$(fds)
        [[ $now == "$last" ]] && break
        last=$now
        sleep 0.5
    done
}

# round SECS WARMUP_SECS TAG: four loadgens in parallel; prints their JSON lines.
round() {
    local secs=$1 warm=$2 tag=$3 pids=() i
    for i in "${!SIZES[@]}"; do
        target/release/loadgen --addr "$ADDR" --conns "$PER" --size "${SIZES[$i]}" \
            --duration "$secs" --warmup "$warm" --connect-concurrency 256 \
            >"$WORK/$tag.$i.json" 2>"$WORK/$tag.$i.err" &
        pids+=($!)
    done
    local rc=0
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    return $rc
}

echo "soak.sh: server $ADDR (mode $MODE), $CONNS connections, sizes ${SIZES[*]} B"
echo "soak.sh: warm-up round (${WARMUP}s)"
round "$WARMUP" 2 warm || echo "soak.sh: a warm-up loadgen failed"
settle
RSS0=$(rss_kb)
FD0=$(fds)
echo "soak.sh: after warm-up: RSS ${RSS0} KiB, fds ${FD0}"

echo "soak.sh: main round (${DURATION}s)"
PEAK=$RSS0
( while sleep 5; do
      r=$(rss_kb 2>/dev/null) || exit 0
      echo "$r" >>"$WORK/rss.samples"
  done ) &
SAMPLER=$!
MAIN_RC=0
round "$DURATION" 2 main || MAIN_RC=1
kill "$SAMPLER" 2>/dev/null || true
[[ -f $WORK/rss.samples ]] && PEAK=$(sort -n "$WORK/rss.samples" | tail -1)
settle
RSS1=$(rss_kb)
FD1=$(fds)

ERRORS=0
TRIPS=0
for f in "$WORK"/main.*.json; do
    line=$(tail -1 "$f")
    e=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$line")
    t=$(sed -n 's/.*"rts":\([0-9]*\).*/\1/p' <<<"$line")
    ERRORS=$((ERRORS + ${e:-1}))
    TRIPS=$((TRIPS + ${t:-0}))
    echo "soak.sh: loadgen $(basename "$f"): $line"
done
for f in "$WORK"/main.*.err; do
    [[ -s $f ]] && { echo "soak.sh: $(basename "$f"):"; head -5 "$f"; }
done

GROWTH=$(awk -v a="$RSS0" -v b="$RSS1" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
echo "soak.sh: RESULT duration=${DURATION}s conns=${CONNS} mode=${MODE} round_trips=${TRIPS} errors=${ERRORS}"
echo "soak.sh: RESULT rss_after_warmup=${RSS0}KiB rss_end=${RSS1}KiB growth=${GROWTH}% peak_during_run=${PEAK}KiB"
echo "soak.sh: RESULT fds_after_warmup=${FD0} fds_end=${FD1}"

FAIL=0
[[ $MAIN_RC == 0 ]] || { echo "soak.sh: FAIL: a loadgen exited non-zero"; FAIL=1; }
[[ $ERRORS == 0 ]] || { echo "soak.sh: FAIL: $ERRORS errors"; FAIL=1; }
awk -v g="$GROWTH" 'BEGIN { exit !(g <= 10 && g >= -10) }' ||
    { echo "soak.sh: FAIL: RSS changed by ${GROWTH}% (> 10 %)"; FAIL=1; }
[[ $FD1 == "$FD0" ]] || { echo "soak.sh: FAIL: fds ${FD0} -> ${FD1}"; FAIL=1; }
[[ $FAIL == 0 ]] && echo "soak.sh: PASS"
exit $FAIL
