#!/usr/bin/env bash
# Measure the stock Linux kexec teardown: the guest kernel's
# "kexec_core: Starting new kernel" -> "Bye!" interval (its own printk clock),
# i.e. the serial CPU_OFF of every secondary, per vCPU count.
#
# Usage: scripts/bench.sh [--runs N] [--smp "4 8"] [--no-hv] [--icount] [--no-build]
#   --runs N     boots per vCPU count (default 3)
#   --smp LIST   vCPU counts (default "4 8")
#   --no-hv      plain QEMU baseline (no hypervisor)
#   --hv FILE    hypervisor ELF (default: the release build)
#   --icount     deterministic guest time (-icount shift=0,sleep=off)
#   --no-build   do not run setup/cargo first
# Prints one line per run (with when each CPU was reported killed) and a
# Markdown summary (min / median / max in ms).
# Logs are kept under .cache/bench/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=3 smps="4 8" mode=() build=1 hvopt=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --smp) smps="$2"; shift 2 ;;
    --no-hv) mode+=(--no-hv); shift ;;
    --hv) hvopt=(--hv "$2"); shift 2 ;;
    --icount) mode+=(--icount); shift ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive number"

outdir="$PV_CACHE/bench"
mkdir -p "$outdir"

# teardown LOG: "<ms> <each CPU's kill, ms after the start>" from the first
# kernel's printk stamps.
teardown() {
    tr -d '\r' <"$1" | awk '
        /kexec_core: Starting new kernel/ { s = stamp($0) }
        s != "" && /psci: CPU[0-9]+ killed/ { k = k (k ? "," : "") sprintf("%.0f", (stamp($0) - s) * 1000) }
        s != "" && /Bye!/ { printf "%.1f %s", (stamp($0) - s) * 1000, k; exit }
        function stamp(l) { sub(/^[^[]*\[ */, "", l); sub(/\].*/, "", l); return l + 0 }'
}

tag="" label="parkvisor"
for m in "${mode[@]}"; do tag+="-${m#--}"; done
[[ " ${mode[*]} " == *" --no-hv "* ]] && label="plain QEMU"
if [[ " ${mode[*]} " == *" --icount "* ]]; then label+=", icount"; else label+=", MTTCG"; fi

declare -A results=()
first=1
for smp in $smps; do
    for ((r = 1; r <= runs; r++)); do
        log="$outdir/kexec-smp$smp$tag-$r.log"
        args=(--scenario kexec --smp "$smp" --timeout 300 --log "$log" "${mode[@]}" "${hvopt[@]}")
        ((build && first)) || args+=(--no-build)
        first=0
        if ! "$PV_ROOT/scripts/run.sh" "${args[@]}" </dev/null >/dev/null 2>"$log.err"; then
            cat "$log.err" >&2
            die "run failed (smp=$smp run=$r): see $log"
        fi
        read -r ms kills < <(teardown "$log") || true
        [[ -n ${ms:-} ]] || die "no 'Starting new kernel' .. 'Bye!' in $log"
        echo "smp=$smp run=$r teardown_ms=$ms cpu_killed_at_ms=${kills:-none}"
        results[$smp]+="$ms "
    done
done

echo
echo "| vCPUs | runs | teardown min (ms) | median | max | mode |"
echo "|---|---|---|---|---|---|"
for smp in $smps; do
    # shellcheck disable=SC2086
    printf '%s\n' ${results[$smp]} | sort -n | awk -v smp="$smp" -v mode="$label" '
        { v[NR] = $1 }
        END { printf "| %s | %d | %.1f | %.1f | %.1f | %s |\n", smp, NR, v[1], v[int((NR + 1) / 2)], v[NR], mode }'
done
