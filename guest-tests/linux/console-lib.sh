# shellcheck shell=bash
# Sourced by console-echo.sh and console-load.sh: boot a Linux scenario
# whose serial input is a FIFO this script types into, and wait for the
# guest's prompt marker.
#
# console_boot NAME LOG PROMPT WAIT_S run.sh-options...: starts run.sh on
# the FIFO (its write end held open on fd 4 for the whole run, so QEMU never
# sees EOF early) with its serial log in LOG, and returns once a log line
# contains PROMPT; dies after WAIT_S seconds or when run.sh ends first.
# Sets console_work (a scratch directory removed at exit) and run_pid.
# console_end: waits for run.sh, closes the FIFO and returns run.sh's exit
# status.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

console_work="" run_pid=""
console_cleanup() {
    [[ -z $run_pid ]] || kill -TERM "$run_pid" 2>/dev/null || true
    [[ -z $console_work ]] || rm -rf "$console_work"
}
trap console_cleanup EXIT

console_boot() {
    local name=$1 log=$2 prompt=$3 wait_s=$4 i
    shift 4
    console_work=$(mktemp -d "${TMPDIR:-/tmp}/pv-$name.XXXXXX")
    local fifo="$console_work/stdin"
    mkdir -p "$(dirname "$log")"
    mkfifo "$fifo"
    # A log left by an earlier run holds the prompt marker: the wait below
    # would find it at once and type before this guest even booted (its
    # PL011 start-up then drains the bytes and the line is lost).
    rm -f "$log"
    "$PV_ROOT/scripts/run.sh" --scenario echo --no-shell --log "$log" "$@" <"$fifo" &
    run_pid=$!
    exec 4>"$fifo"
    note "waiting up to ${wait_s}s for the guest prompt"
    for ((i = 0; i < wait_s * 5; i++)); do
        [[ -f $log ]] && grep -a -q "$prompt" "$log" && break
        kill -0 "$run_pid" 2>/dev/null || break
        sleep 0.2
    done
    grep -a -q "$prompt" "$log" 2>/dev/null || {
        exec 4>&-
        wait "$run_pid" || true
        run_pid=""
        die "no '$prompt' marker (log: $log)"
    }
}

console_end() {
    local rc=0
    wait "$run_pid" || rc=$?
    run_pid=""
    exec 4>&-
    return "$rc"
}
