#!/usr/bin/env bash
# Console input test: boot the `echo` scenario, wait for its prompt marker
# ("PVTEST echo prompt"), then type a line into QEMU's serial stdin (through a
# FIFO that is run.sh's stdin) and check the guest read it back exactly:
# "PVTEST echo got=<line>", then PASS and a clean power-off (judged by run.sh).
#
# Under parkvisor the bytes take the emulated PL011 (accesses forwarded to the
# real UART) and its RX interrupt (SPI 33) through the vGIC.
#
# Usage: guest-tests/linux/console-echo.sh [run.sh options, e.g. --smp 4 --no-hv]
# Env: PV_ECHO_WAIT  seconds to wait for the prompt (default 240)
#      PV_ECHO_LOG   serial log (default .cache/logs/console-echo-<pid>.serial)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

wait_s=${PV_ECHO_WAIT:-240}
# Spaces, punctuation and a per-run number: a line the guest could not have
# made up, and that survives `read -r` unchanged.
line="parkvisor pl011 rx: hello/$$-$RANDOM ok"

work=$(mktemp -d "${TMPDIR:-/tmp}/pv-echo.XXXXXX")
fifo="$work/stdin"
log="${PV_ECHO_LOG:-$PV_CACHE/logs/console-echo-$$.serial}"
mkdir -p "$(dirname "$log")"
mkfifo "$fifo"
# A log left by an earlier run holds the prompt marker: the wait below
# would find it at once and type before this guest even booted (its
# PL011 start-up then drains the bytes and the line is lost).
rm -f "$log"
run_pid=""
cleanup() {
    [[ -z $run_pid ]] || kill -TERM "$run_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$PV_ROOT/scripts/run.sh" --scenario echo --no-shell --log "$log" "$@" <"$fifo" &
run_pid=$!
# Hold the FIFO's write end for the whole run: QEMU then never sees EOF early.
exec 4>"$fifo"

note "waiting up to ${wait_s}s for the guest prompt"
for ((i = 0; i < wait_s * 5; i++)); do
    [[ -f $log ]] && grep -a -q 'PVTEST echo prompt' "$log" && break
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.2
done
grep -a -q 'PVTEST echo prompt' "$log" 2>/dev/null || {
    exec 4>&-
    wait "$run_pid" || true
    run_pid=""
    die "no 'PVTEST echo prompt' marker (log: $log)"
}

note "typing: $line"
# What a terminal sends for Enter: CR (the guest tty's ICRNL makes it NL).
printf '%s\r' "$line" >&4

set +e
wait "$run_pid"
rc=$?
set -e
run_pid=""
exec 4>&-
((rc == 0)) || die "run.sh failed with status $rc (log: $log)"

got=$(tr -d '\r' <"$log" | sed -n 's/^\[[ 0-9.]*\] PVTEST echo got=//p' | head -n1)
[[ $got == "$line" ]] || die "guest read '$got', expected '$line' (log: $log)"
grep -a -q 'PVTEST PASS echo' "$log" || die "no 'PVTEST PASS echo' (log: $log)"
note "ok: the guest read the typed line back: $got"
