#!/usr/bin/env bash
# Run the Linux guest scenarios through scripts/run.sh and judge them.
#
# Usage: guest-tests/linux/run-scenarios.sh [options] [SCENARIO...]
#   SCENARIO        boot hotplug kexec kdump poweroff reboot demo
#                   (default: boot hotplug kexec kdump poweroff reboot)
#   --no-hv         on plain QEMU (the baseline) instead of under parkvisor
#   --icount        deterministic guest time (run.sh --icount)
#   --smp N         vCPUs (default from board.env)
#   --mem SIZE      RAM (default 1G: the initrd slot at 0x60000000 needs > 512M)
#   --timeout S     per scenario (default 300)
#   --hv-args ARGS  passed to run.sh
#   --hv FILE       hypervisor ELF (run.sh --hv)
#   --no-build      skip setup/cargo (run.sh --no-build)
#
# A scenario passes when run.sh exits 0 (clean end, no FAIL/panic) and the
# serial log has the scenario's markers. Logs: .cache/logs/linux-<scenario>.log.
# Ends with the line "N passed, N failed"; exit status 1 if any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

smp="$DEFAULT_SMP" mem=1G timeout=300 build=1 common=() scenarios=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --no-hv) common+=(--no-hv); shift ;;
    --icount) common+=(--icount); shift ;;
    --smp) need_value "$1" "$#"; smp="$2"; shift 2 ;;
    --mem) need_value "$1" "$#"; mem="$2"; shift 2 ;;
    --timeout) need_value "$1" "$#"; timeout="$2"; shift 2 ;;
    --hv-args) need_value "$1" "$#"; common+=(--hv-args "$2"); shift 2 ;;
    --hv) need_value "$1" "$#"; common+=(--hv "$2"); shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) scenarios+=("$1"); shift ;;
    esac
done
((${#scenarios[@]})) || scenarios=(boot hotplug kexec kdump poweroff reboot)

# The CPU list Linux prints when all N are online.
all=0
((smp > 1)) && all="0-$((smp - 1))"

# Markers each scenario must print (besides "PVTEST PASS <name>"): regular
# expressions for a whole line after the kernel's time stamp.
markers() {
    case "$1" in
    boot) echo "PVTEST boot online=$all" ;;
    hotplug) echo "PVTEST hotplug rounds=2 online=$all" ;;
    kexec) echo "PVTEST kexec second kernel online=$all" ;;
    kdump) printf '%s\n' "PVTEST kdump loaded .*" "PVTEST kdump capture kernel vmcore=elf .*" ;;
    poweroff) echo "PVTEST poweroff busy=$((smp - 1))" ;;
    reboot) echo "PVTEST reboot" ;;
    demo) echo "PVTEST demo second kernel online=$all" ;;
    *) die "unknown scenario '$1'" ;;
    esac
}

passed=0 failed=0
mkdir -p "$PV_CACHE/logs"
for s in "${scenarios[@]}"; do
    markers "$s" >/dev/null
    log="$PV_CACHE/logs/linux-$s.log"
    args=(--scenario "$s" --smp "$smp" --mem "$mem" --timeout "$timeout" --log "$log" --no-shell "${common[@]}")
    ((build)) || args+=(--no-build)
    build=0
    t0=$(now_ms)
    why=""
    if ! "$PV_ROOT/scripts/run.sh" "${args[@]}" </dev/null >/dev/null 2>"$log.err"; then
        why=$(grep -a -E 'FAILED|TIMEOUT|error' "$log.err" | tail -n1)
        why=${why:-"run.sh failed (see $log.err)"}
    else
        while IFS= read -r m; do
            tr -d '\r' <"$log" | grep -a -q -E -- "(^|\] )$m\$" || { why="no '$m' in $log"; break; }
        done < <(markers "$s"; echo "PVTEST PASS $s")
    fi
    secs=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
    if [[ -z $why ]]; then
        echo "ok   linux $s (${secs}s)"
        passed=$((passed + 1))
    else
        echo "FAIL linux $s (${secs}s): $why"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
