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
# shellcheck source=guest-tests/linux/console-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/console-lib.sh"

wait_s=${PV_ECHO_WAIT:-240}
# Spaces, punctuation and a per-run number: a line the guest could not have
# made up, and that survives `read -r` unchanged.
line="parkvisor pl011 rx: hello/$$-$RANDOM ok"
log="${PV_ECHO_LOG:-$PV_CACHE/logs/console-echo-$$.serial}"

console_boot echo "$log" 'PVTEST echo prompt' "$wait_s" "$@"

note "typing: $line"
# What a terminal sends for Enter: CR (the guest tty's ICRNL makes it NL).
printf '%s\r' "$line" >&4

console_end || die "run.sh failed with status $? (log: $log)"

got=$(tr -d '\r' <"$log" | sed -n 's/^\[[ 0-9.]*\] PVTEST echo got=//p' | head -n1)
[[ $got == "$line" ]] || die "guest read '$got', expected '$line' (log: $log)"
grep -a -q 'PVTEST PASS echo' "$log" || die "no 'PVTEST PASS echo' (log: $log)"
note "ok: the guest read the typed line back: $got"
