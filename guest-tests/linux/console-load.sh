#!/usr/bin/env bash
# Console input under load: boot the `echoload` scenario (guest-tests/linux/
# init), wait for its prompt marker, then type PV_LOAD_LINES lines
# "L<i> <text>" into QEMU's serial stdin (a FIFO, as console-echo.sh does)
# while the guest keeps every CPU busy and cycles secondaries through
# hotplug, moving the PL011 interrupt's affinity each time. The guest must
# read every line, in order: it checks each line's number, echoes it as
# "PVTEST echoload got=<line>", and at the end prints the MD5 sum of all it
# read, which this script compares with that of what it typed; then PASS and
# a clean power-off (judged by run.sh).
#
# Typing goes in lock step: each line (or burst of 10 lines, every 50) is
# typed only after the guest has read the one before, PV_LOAD_GAP seconds
# later. So a lost receive interrupt shows: the line stays in the UART's
# FIFO, nothing more arrives to raise another interrupt, and the guest never
# reads it (with free-running typing the next line would hide the loss).
#
# Usage: guest-tests/linux/console-load.sh [run.sh options, e.g. --smp 8 --no-hv]
# Env: PV_LOAD_LINES lines to type (default 300)
#      PV_LOAD_GAP   seconds between a line read and the next typed (default 0.02)
#      PV_LOAD_ACK   seconds the guest may take to read a line (default 40)
#      PV_LOAD_WAIT  seconds to wait for the prompt (default 240)
#      PV_LOAD_LOG   serial log (default .cache/logs/console-load-<pid>.serial)
set -euo pipefail
# shellcheck source=guest-tests/linux/console-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/console-lib.sh"

lines=${PV_LOAD_LINES:-300}
gap=${PV_LOAD_GAP:-0.02}
wait_s=${PV_LOAD_WAIT:-240}
ack_s=${PV_LOAD_ACK:-40}
log="${PV_LOAD_LOG:-$PV_CACHE/logs/console-load-$$.serial}"

console_boot load "$log" 'PVTEST echoload prompt' "$wait_s" \
    --append "console=ttyAMA0 printk.time=1 pv.scenario=echoload pv.lines=$lines" "$@"

# Each line: its number (the guest checks the order), this run's tag, and a
# varying payload with spaces and punctuation that `read -r` keeps as is.
sent="$console_work/sent"
tag="$$-$RANDOM"
for ((i = 1; i <= lines; i++)); do
    printf 'L%d %s x%0*d/ok.\n' "$i" "$tag" $((i % 23 + 1)) "$i"
done >"$sent"

# Whether the guest has read line $1: its marker in the log. A trace line of
# the hypervisor may split a marker; with those lines and every line break
# removed the marker is whole again.
acked() {
    tail -c 30000 "$log" | tr -d '\r' | grep -av '^\[hv ' | tr -d '\n' | grep -aq "got=L$1 "
}

note "typing $lines lines (one at a time, each after the guest read the one before; 10 at once every 50)"
t0=$(now_ms)
i=0
while IFS= read -r l; do
    i=$((i + 1))
    # What a terminal sends for Enter: CR (the guest tty's ICRNL makes it NL).
    printf '%s\r' "$l" >&4
    # Lines 41..49 of every 50 go out back to back with line 50.
    ((i % 50 >= 41)) && continue
    # A lost receive interrupt leaves the line in the UART FIFO: nothing
    # more arrives to raise another, so the guest never reads it.
    for ((w = 0; w < ack_s * 50; w++)); do
        acked "$i" && break
        kill -0 "$run_pid" 2>/dev/null || break
        sleep 0.02
    done
    acked "$i" || {
        note "the guest did not read line $i within ${ack_s}s"
        break
    }
    sleep "$gap"
done <"$sent"
note "typed $lines lines in $(($(now_ms) - t0)) ms"

rc=0
console_end || rc=$?
# The per-line markers may be split by hypervisor trace lines; the guest's
# checksum of everything it read is what counts.
done_line=$(tr -d '\r' <"$log" | grep -a 'PVTEST echoload done' | head -n1 || true)
echo "$done_line"
grep -a 'PVTEST FAIL' "$log" || true
want="lines=$lines md5=$(md5sum <"$sent" | cut -d' ' -f1)"
[[ $done_line == *"$want "* ]] ||
    die "the guest did not read the $lines typed lines in order: want '$want' (log: $log)"
((rc == 0)) || die "run.sh failed with status $rc (log: $log)"
grep -a -q 'PVTEST PASS echoload' "$log" || die "no 'PVTEST PASS echoload' (log: $log)"
note "ok: the guest read all $lines typed lines back, in order"
