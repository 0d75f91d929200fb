#!/usr/bin/env bash
# User-space instructions per echo round trip, counted by callgrind: the number that does
# not drift on a noisy machine (DESIGN.md, "Performance"). Counting starts when the load
# generator's measured window starts (every connection made, warm-up done) and stops when it
# ends, so start-up and connection set-up are not in the figure.
#
#   scripts/callgrind_echo.sh [SERVER...]    SERVER: protocol streams sockets tokio smol
#                                            (default: protocol streams sockets tokio)
# Env: CONNS (100), SIZE (1024), SECS (6): the load; KEEP=1 keeps /tmp/corio-cg.SERVER for
#      callgrind_annotate.
# Prints one line per server: instructions per round trip, and the ratio to tokio's when
# tokio was measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-100} SIZE=${SIZE:-1024} SECS=${SECS:-6}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(protocol streams sockets tokio)
command -v valgrind >/dev/null || { echo "callgrind_echo.sh: valgrind is not installed" >&2; exit 1; }
cargo build --release -q --example echo_server
cargo build --release -q -p bench --bins
T=${CARGO_TARGET_DIR:-target}/release

declare -A IPR
for s in "${servers[@]}"; do
    case $s in
        protocol | streams | sockets) cmd=("$T/examples/echo_server" 127.0.0.1:0 --mode "$s") ;;
        tokio | smol) cmd=("$T/echo_$s" 127.0.0.1:0) ;;
        *) echo "unknown server: $s" >&2; exit 2 ;;
    esac
    out=/tmp/corio-cg.$s
    log=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" >"$log" 2>&1 &
    vpid=$!
    addr=""
    for _ in $(seq 1 200); do
        addr=$(sed -n 's/^listening on //p' "$log" | head -1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "$s: did not start" >&2; cat "$log" >&2; exit 1; }
    # loadgen --control: "connected" once every connection made a round trip; "start" resets
    # its counters; "stop" prints the result line.
    coproc LG { "$T/loadgen" --addr "$addr" --conns "$CONNS" --size "$SIZE" --control; }
    lgpid=$LG_PID
    read -r _connected <&"${LG[0]}"
    sleep 1 # warm-up
    callgrind_control -z "$vpid" >/dev/null 2>&1
    echo start >&"${LG[1]}"
    read -r _started <&"${LG[0]}"
    sleep "$SECS"
    echo stop >&"${LG[1]}"
    read -r result <&"${LG[0]}"
    callgrind_control -d "$vpid" >/dev/null 2>&1
    kill -TERM "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    wait "$lgpid" 2>/dev/null || true
    rts=$(printf '%s' "$result" | grep -o '"rts":[0-9]*' | cut -d: -f2)
    # The dump after zeroing is the file with the highest suffix.
    dump=$(ls -v "$out".* 2>/dev/null | tail -1)
    ir=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
    IPR[$s]=$((ir / rts))
    printf '%-9s %6d instructions per round trip (%d round trips)\n' "$s" "${IPR[$s]}" "$rts"
    [ "${KEEP:-0}" = 1 ] && cp "$dump" "$out" || true
    rm -f "$log" "$out".*
done
if [ -n "${IPR[tokio]:-}" ]; then
    for s in "${servers[@]}"; do
        [ "$s" = tokio ] && continue
        awk -v a="${IPR[$s]}" -v b="${IPR[tokio]}" -v s="$s" 'BEGIN { printf "%-9s / tokio = %.2f\n", s, a / b }'
    done
fi
