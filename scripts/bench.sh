#!/usr/bin/env bash
# Benchmarks of stock Linux under parkvisor against plain QEMU (run.sh --no-hv).
#
# Usage: scripts/bench.sh [all | overhead | boot | traps | kexec | kexec-module | fast-stop] [options]
#   all        (default) overhead, then kexec teardown under parkvisor and plain
#              QEMU with --icount, then fast-stop; prints every table
#              (about 15 min)
#   fast-stop  FAST_STOP vs serial and parallel CPU_OFF for 2..64 vCPUs under
#              icount and MTTCG (scripts/bench-fast-stop.sh with its defaults)
#   overhead   parkvisor vs plain QEMU, same kernel, initramfs, 4 vCPUs, under
#              MTTCG and under --icount, runs interleaved: Linux boot to init
#              (host wall time from QEMU start to the first init marker, and the
#              guest's printk clock at that marker) and the ipibench scenario (a
#              FIFO ping-pong between shells pinned to CPU0 and CPU1: cross-CPU
#              wakeups, 2 IPIs per round trip); medians and parkvisor/plain ratios;
#              then the boot mode's table
#   boot       Linux boot to power-off (scenario boot), 4 vCPUs, parkvisor vs
#              plain QEMU in interleaved pairs (plain, parkvisor, plain, ...),
#              under MTTCG and --icount: host wall time from QEMU start to
#              "reboot: Power down", QEMU's CPU time (user+sys of run.sh and
#              its children, QEMU nearly all of it) and the guest clock there;
#              medians and the median of the per-pair parkvisor/plain ratios
#   traps      one icount Linux boot to power-off under parkvisor with QEMU's
#              -d int log: every exception taken to EL2 by kind (data aborts
#              by guest register page and offset, trapped system registers,
#              IRQs, HVCs); deterministic (about 2 min)
#   kexec      the stock kexec CPU teardown: the guest's own "kexec_core:
#              Starting new kernel" -> "Bye!" interval (the serial CPU_OFF of
#              every secondary), per vCPU count, for one mode (--no-hv, --icount)
#   kexec-module  stock Linux vs parkvisor's guest module, under parkvisor, in
#              one run under icount and MTTCG: the kexec teardown stock/module,
#              idle/every CPU busy (one boot chain of four kexecs, scenario
#              kexecbench), and the panic -> capture kernel stop time with a CPU
#              spinning with interrupts masked ("Kernel panic" -> "Starting
#              crashdump kernel", scenario crashspin); vCPUs from --smp
#              (default here "2 4 8 16"), one run each (--runs N for more,
#              medians); prints a table with the stock/module ratios
# Options:
#   --runs N     boots per configuration (default 3)
#   --smp LIST   kexec: vCPU counts (default "4 8")
#   --accel LIST kexec-module: "icount mttcg" (default) or one of them
#   --no-hv      kexec: plain QEMU baseline (no hypervisor)
#   --icount     kexec: deterministic guest time (-icount shift=0,sleep=off)
#                (--no-hv / --icount without a mode select kexec, as before)
#   --rounds N   overhead: ipibench round trips under MTTCG (default 300)
#   --icount-rounds N  overhead: ipibench round trips under icount (default 2000)
#   --hv FILE    hypervisor ELF (default: the release build with the
#                uart-model feature, in target/uart-model)
#   --board NAME run.sh's board (default virt). A board with a fixed CPU
#                count (raspi4b: 4) runs only that; the bare raspi4b cannot
#                kexec (spin-table CPUs), so kexec --no-hv is refused there
#                and `all` leaves that row out
#   --no-build   do not run setup/cargo first
# Prints one line per run and Markdown tables (min / median / max, ratios).
# Logs are kept under .cache/bench/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

what="" runs="" smps="" accels="icount mttcg" mode=() build=1 hvopt=() rounds=300 ic_rounds=2000 board=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    all | overhead | boot | traps | kexec | kexec-module | fast-stop) [[ -z $what ]] || die "one mode only"; what="$1"; shift ;;
    --runs) need_value "$1" "$#"; runs="$2"; shift 2 ;;
    --smp) need_value "$1" "$#"; smps="$2"; shift 2 ;;
    --accel) need_value "$1" "$#"; accels="$2"; shift 2 ;;
    --no-hv) mode+=(--no-hv); shift ;;
    --hv) need_value "$1" "$#"; hvopt=(--hv "$2"); shift 2 ;;
    --board) need_value "$1" "$#"; pv_select_board "$2"; board=(--board "$2"); shift 2 ;;
    --icount) mode+=(--icount); shift ;;
    --rounds) need_value "$1" "$#"; rounds="$2"; shift 2 ;;
    --icount-rounds) need_value "$1" "$#"; ic_rounds="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
if [[ -z $runs ]]; then if [[ $what == kexec-module ]]; then runs=1; else runs=3; fi; fi
if [[ -z $smps ]]; then if [[ $what == kexec-module ]]; then smps="2 4 8 16"; else smps="4 8"; fi; fi
# A board with a fixed CPU count (raspi4b) runs at that count only.
[[ -z ${FIXED_SMP:-} ]] || smps=$FIXED_SMP
# The bare board of a spin-table machine has no way to take CPUs out of
# the kernel, so stock Linux refuses kexec there: nothing to time.
bare_kexec=1
[[ ${QEMU_MACHINE_PLAIN:-} == raspi4b ]] && bare_kexec=0
((bare_kexec)) || [[ $what != kexec || " ${mode[*]} " != *" --no-hv "* ]] ||
    die "the bare ${board[1]} cannot kexec (stock Linux refuses: spin-table CPUs); time it under parkvisor"

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive number"
for a in $accels; do [[ $a == icount || $a == mttcg ]] || die "--accel: icount and/or mttcg, got '$a'"; done
[[ $rounds =~ ^[1-9][0-9]*$ && $ic_rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive number"
if [[ -z $what ]]; then
    if ((${#mode[@]})); then what=kexec; else what=all; fi
fi
[[ $what == kexec || ${#mode[@]} -eq 0 ]] || die "--no-hv / --icount only go with the kexec mode"

outdir="$PV_CACHE/bench"
mkdir -p "$outdir"

# Build once up front, so that no run's wall time includes a build.
if ((build)); then
    "$PV_ROOT/scripts/setup.sh" linux
    if ((${#hvopt[@]} == 0)); then
        note "cargo build --release -p parkvisor --features uart-model --target-dir target/uart-model"
        (cd "$PV_ROOT" && cargo build -q --release -p parkvisor --features uart-model \
            --target aarch64-unknown-none-softfloat --target-dir target/uart-model) ||
            die "building the hypervisor failed"
    fi
    if [[ $what == all || $what == fast-stop ]]; then
        note "cargo build --release -p guests --target aarch64-unknown-none"
        (cd "$PV_ROOT" && cargo build -q --release -p guests --target aarch64-unknown-none) ||
            die "building the test guests failed"
    fi
fi
"$PV_ROOT/guest-tests/linux/build-initramfs.sh"
[[ ${#hvopt[@]} -gt 0 ]] || hvopt=(--hv "$PV_ROOT/target/uart-model/aarch64-unknown-none-softfloat/release/parkvisor")
[[ -f ${hvopt[1]} ]] || die "no hypervisor at ${hvopt[1]} (drop --no-build, or give --hv)"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
median() { # median of the numbers on stdin
    sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
summary() { # summary: "min median max" of the numbers on stdin
    sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f %.1f\n", v[1], m, v[NR] }'
}

# teardown LOG: "<ms> <each CPU's kill, ms after the start>" from the first
# kernel's printk stamps.
teardown() {
    tr -d '\r' <"$1" | awk '
        /kexec_core: Starting new kernel/ { s = stamp($0) }
        s != "" && /psci: CPU[0-9]+ killed/ { k = k (k ? "," : "") sprintf("%.0f", (stamp($0) - s) * 1000) }
        s != "" && /Bye!/ { printf "%.1f %s", (stamp($0) - s) * 1000, k; exit }
        function stamp(l) { sub(/^[^[]*\[ */, "", l); sub(/\].*/, "", l); return l + 0 }'
}

# kexec_bench MODE...: teardown runs for one mode (run.sh options), per vCPU
# count; appends its table rows to kexec_rows.
kexec_rows=""
kexec_bench() {
    local tag="" label="parkvisor" m smp r log ms kills args
    local -A results=()
    for m in "$@"; do tag+="-${m#--}"; done
    [[ " $* " == *" --no-hv "* ]] && label="plain QEMU"
    if [[ " $* " == *" --icount "* ]]; then label+=", icount"; else label+=", MTTCG"; fi
    for smp in $smps; do
        for ((r = 1; r <= runs; r++)); do
            log="$outdir/kexec-smp$smp$tag-$r.log"
            args=(--scenario kexec --smp "$smp" --timeout 300 --log "$log" --no-build "${board[@]}" "$@")
            [[ " $* " == *" --no-hv "* ]] || args+=("${hvopt[@]}")
            if ! "$PV_ROOT/scripts/run.sh" "${args[@]}" </dev/null >/dev/null 2>"$log.err"; then
                cat "$log.err" >&2
                die "run failed (smp=$smp run=$r): see $log"
            fi
            read -r ms kills < <(teardown "$log") || true
            [[ -n ${ms:-} ]] || die "no 'Starting new kernel' .. 'Bye!' in $log"
            echo "kexec $label smp=$smp run=$r teardown_ms=$ms cpu_killed_at_ms=${kills:-none}"
            results[$smp]+="$ms "
        done
    done
    for smp in $smps; do
        # shellcheck disable=SC2086
        read -r lo med hi < <(printf '%s\n' ${results[$smp]} | summary)
        kexec_rows+="| $smp | $runs | $lo | $med | $hi | $label |"$'\n'
    done
}
print_kexec() {
    echo
    echo "kexec teardown (\"Starting new kernel\" -> \"Bye!\", guest clock, ms):"
    echo
    echo "| vCPUs | runs | teardown min (ms) | median | max | mode |"
    echo "|---|---|---|---|---|---|"
    printf '%s' "$kexec_rows"
}

# --- overhead ---------------------------------------------------------------------
# stamp: prefix every line with the host time in microseconds.
stamp() {
    local l
    while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done
}
# overhead_parse STAMPED_LOG: "<host ms QEMU start -> init marker> <guest s at the
# init marker> <ipibench ms (guest clock, start -> done markers)> <IPIs>"
overhead_parse() {
    tr -d '\r' <"$1" | awk '
        function stamp(l) { sub(/^[0-9]+ [^[]*\[ */, "", l); sub(/\].*/, "", l); return l + 0 }
        t0 == "" && / run\.sh: serial log: / { t0 = $1 }
        init == "" && /\] PVTEST ipibench stage=1 / { init = ($1 - t0) / 1000; ginit = stamp($0) }
        /\] PVTEST ipibench start / { s = stamp($0) }
        /\] PVTEST ipibench done / { d = stamp($0) }
        /\] PVTEST ipibench ipis_cpu0_cpu1=/ { n = $0; sub(/.*=/, "", n) }
        END { if (t0 != "" && init != "" && s != "" && d != "") printf "%.0f %.6f %.3f %s\n", init, ginit, (d - s) * 1000, n }'
}
declare -A ov=() # ov[accel,target,metric] = space-separated values
overhead_run() { # overhead_run ACCEL TARGET RUN
    local accel=$1 target=$2 r=$3 n=$rounds args log host ginit ipims ipis
    args=(--scenario ipibench --smp 4 --timeout 400 --no-build --no-shell "${board[@]}")
    if [[ $accel == icount ]]; then args+=(--icount); n=$ic_rounds; fi
    if [[ $target == plain ]]; then args+=(--no-hv); else args+=("${hvopt[@]}"); fi
    log="$outdir/overhead-$accel-$target-$r.log"
    args+=(--log "$log" --append "console=ttyAMA0 printk.time=1 pv.scenario=ipibench pv.rounds=$n")
    set +e
    "$PV_ROOT/scripts/run.sh" "${args[@]}" </dev/null 2>&1 | stamp >"$log.stamped"
    local rc=${PIPESTATUS[0]}
    set -e
    ((rc == 0)) || { tail -n 5 "$log.stamped" >&2; die "run failed ($accel $target run $r, status $rc): see $log"; }
    read -r host ginit ipims ipis < <(overhead_parse "$log.stamped") || true
    [[ -n ${ipims:-} ]] || die "markers missing in $log"
    echo "overhead $accel $target run=$r init_host_ms=$host init_guest_s=$ginit ipibench_rounds=$n ipibench_ms=$ipims ipis=$ipis load=$(loadavg)"
    ov[$accel,$target,host]+="$host "
    ov[$accel,$target,guest]+="$ginit "
    ov[$accel,$target,ipi]+="$(awk -v ms="$ipims" -v n="$n" 'BEGIN { printf "%.1f", ms * 1000 / n }') "
}
overhead_bench() {
    local accel r target
    for accel in tcg icount; do
        for ((r = 1; r <= runs; r++)); do
            for target in plain hv; do overhead_run "$accel" "$target" "$r"; done
        done
    done
}
print_overhead() {
    local accel metric name p h alabel
    echo
    echo "Linux overhead vs plain QEMU: 4 vCPUs, median of $runs runs each (ipibench: $rounds round trips under MTTCG, $ic_rounds under icount):"
    echo
    echo "| measure | accel | plain QEMU | parkvisor | parkvisor/plain |"
    echo "|---|---|---|---|---|"
    for accel in tcg icount; do
        alabel=MTTCG
        [[ $accel == icount ]] && alabel=icount
        for metric in host guest ipi; do
            case $metric in
            host) name="boot to init, host wall (ms)" ;;
            guest) name="boot to init, guest clock (s)" ;;
            ipi) name="ipibench, guest time per round trip (µs)" ;;
            esac
            # shellcheck disable=SC2086
            p=$(printf '%s\n' ${ov[$accel,plain,$metric]} | median)
            # shellcheck disable=SC2086
            h=$(printf '%s\n' ${ov[$accel,hv,$metric]} | median)
            awk -v n="$name" -v a="$alabel" -v p="$p" -v h="$h" \
                'BEGIN { printf "| %s | %s | %s | %s | %.3f |\n", n, a, p, h, (p > 0) ? h / p : 0 }'
        done
    done
}

# --- boot to power-off ------------------------------------------------------------
# boot_parse STAMPED_LOG: "<host ms QEMU start -> Power down> <guest s there>"
boot_parse() {
    tr -d '\r' <"$1" | awk '
        t0 == "" && / run\.sh: serial log: / { t0 = $1 }
        t0 != "" && /\] reboot: Power down/ {
            g = $0; sub(/^[0-9]+ [^[]*\[ */, "", g); sub(/\].*/, "", g)
            printf "%.0f %s\n", ($1 - t0) / 1000, g; exit }'
}
# cpu_seconds: the children's "user sys" line of bash's `times` -> seconds.
cpu_seconds() {
    awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } printf "%.2f", s }'
}
declare -A bt=() # bt[accel,target,metric] = space-separated values; bt[accel,ratio,metric] per pair
boot_run() { # boot_run ACCEL TARGET RUN: one boot; echoes "<wall ms> <cpu s> <guest s>"
    local accel=$1 target=$2 r=$3 args log cpu rc wall guest
    args=(--scenario boot --smp 4 --timeout 400 --no-build --no-shell)
    [[ $accel == icount ]] && args+=(--icount)
    if [[ $target == plain ]]; then args+=(--no-hv); else args+=("${hvopt[@]}"); fi
    log="$outdir/boot-$accel-$target-$r.log"
    args+=(--log "$log")
    set +e
    cpu=$( (
        "$PV_ROOT/scripts/run.sh" "${args[@]}" </dev/null 2>&1 | stamp >"$log.stamped"
        rc=${PIPESTATUS[0]}
        times
        exit "$rc"
    ) | cpu_seconds)
    rc=$?
    set -e
    ((rc == 0)) || { tail -n 5 "$log.stamped" >&2; die "run failed ($accel $target run $r, status $rc): see $log"; }
    read -r wall guest < <(boot_parse "$log.stamped") || true
    [[ -n ${guest:-} && -n $cpu ]] || { tail -n 5 "$log.stamped" >&2; die "no power-off in $log ($accel $target run $r)"; }
    echo "boot $accel $target run=$r poweroff_host_ms=$wall qemu_cpu_s=$cpu poweroff_guest_s=$guest load=$(loadavg)" >&2
    echo "$wall $cpu $guest"
}
boot_bench() {
    local accel r pw pc pg hw hc hg
    for accel in tcg icount; do
        for ((r = 1; r <= runs; r++)); do
            read -r pw pc pg < <(boot_run "$accel" plain "$r")
            read -r hw hc hg < <(boot_run "$accel" hv "$r")
            bt[$accel,plain,wall]+="$pw " bt[$accel,plain,cpu]+="$pc " bt[$accel,plain,guest]+="$pg "
            bt[$accel,hv,wall]+="$hw " bt[$accel,hv,cpu]+="$hc " bt[$accel,hv,guest]+="$hg "
            bt[$accel,ratio,wall]+="$(awk -v a="$hw" -v b="$pw" 'BEGIN { printf "%.3f", a / b }') "
            bt[$accel,ratio,cpu]+="$(awk -v a="$hc" -v b="$pc" 'BEGIN { printf "%.3f", a / b }') "
            bt[$accel,ratio,guest]+="$(awk -v a="$hg" -v b="$pg" 'BEGIN { printf "%.4f", a / b }') "
        done
    done
}
print_boot() {
    local accel metric name p h q alabel
    echo
    echo "Linux boot to power-off, 4 vCPUs, $runs interleaved pairs (plain, parkvisor) per accelerator:"
    echo
    echo "| measure | accel | plain QEMU | parkvisor | parkvisor/plain (median of pairs) | per pair |"
    echo "|---|---|---|---|---|---|"
    for accel in tcg icount; do
        alabel=MTTCG
        [[ $accel == icount ]] && alabel=icount
        for metric in wall cpu guest; do
            case $metric in
            wall) name="host wall, QEMU start to power-off (ms)" ;;
            cpu) name="QEMU CPU time, user+sys (s)" ;;
            guest) name="guest clock at power-off (s)" ;;
            esac
            # shellcheck disable=SC2086
            p=$(printf '%s\n' ${bt[$accel,plain,$metric]} | median)
            # shellcheck disable=SC2086
            h=$(printf '%s\n' ${bt[$accel,hv,$metric]} | median)
            # shellcheck disable=SC2086
            q=$(printf '%s\n' ${bt[$accel,ratio,$metric]} | median)
            echo "| $name | $alabel | $p | $h | $q | ${bt[$accel,ratio,$metric]% } |"
        done
    done
}

# --- EL2 entries by kind -------------------------------------------------------------
traps_bench() {
    local log="$outdir/traps.log" ints="$outdir/traps-int.log"
    "$PV_ROOT/scripts/run.sh" --scenario boot --smp 4 --icount --timeout 900 --no-build --no-shell \
        "${hvopt[@]}" --log "$log" --qemu-extra "-d int -D $ints" </dev/null >/dev/null 2>"$log.err" ||
        { cat "$log.err" >&2; die "run failed: see $log"; }
    echo
    echo "Exceptions taken to EL2 in one icount Linux boot to power-off, 4 vCPUs (QEMU -d int):"
    echo
    awk '
        function hex(h,   i, v) { h = tolower(h); sub(/^0x/, "", h); v = 0
            for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
            return v }
        /^Taking exception/ { kind = $3 " " $4; el2 = 0; next }
        /^\.\.\.from EL[01] to EL2/ { el2 = 1; n++; next }
        !el2 { next }
        /^\.\.\.with ESR/ { split($3, e, "/"); ec = e[1]; iss = e[2] }
        /^\.\.\.with FAR/ && kind ~ /Data/ {
            far = $3; rw = (int(hex(substr(iss, length(iss) - 1)) / 64) % 2) ? "write" : "read"
            dabt[substr(far, 1, length(far) - 3) "xxx, offset 0x" substr(far, length(far) - 2) " " rw]++ }
        /^\.\.\.to EL2 PC/ {
            if (kind ~ /Data/) d++
            else if (kind ~ /IRQ|FIQ/) irq++
            else if (ec == "0x18") sys++
            else if (ec == "0x16") hvc++
            else other[kind " EC " ec]++
            el2 = 0 }
        END {
            printf "| kind | count |\n|---|---|\n"
            printf "| data aborts (emulated MMIO) | %d |\n", d
            for (k in dabt) if (dabt[k] >= 100) printf "| - guest VA %s | %d |\n", k, dabt[k]
            printf "| trapped system registers (EC 0x18) | %d |\n", sys
            printf "| physical IRQs | %d |\n", irq
            printf "| HVC | %d |\n", hvc
            for (k in other) printf "| %s | %d |\n", k, other[k]
            printf "| **total EL2 entries** | **%d** |\n", n }' "$ints"
    grep -a "reboot: Power down" "$log" | tr -d '\r' | sed 's/^/guest clock at power-off: /'
    rm -f "$ints"
}

# --- kexec-module ------------------------------------------------------------------
# module_chain_parse LOG: the four teardowns of a kexecbench chain, in ms, in
# the order the chain runs them (stock-idle stock-busy module-idle module-busy).
module_chain_parse() {
    tr -d '\r' <"$1" | awk '
        function stamp(l) { sub(/^[^[]*\[ */, "", l); sub(/\].*/, "", l); return l + 0 }
        /PVTEST kexecbench teardown=/ { name = $0; sub(/.*teardown=/, "", name) }
        /kexec_core: Starting new kernel/ { s = stamp($0) }
        s != "" && /Bye!/ { t[name] = (stamp($0) - s) * 1000; s = "" }
        END { printf "%.3f %.3f %.3f %.3f\n", t["stock-idle"], t["stock-busy"], t["module-idle"], t["module-busy"] }'
}
# crash_stop_parse LOG: ms from "Kernel panic" to "Starting crashdump kernel".
crash_stop_parse() {
    tr -d '\r' <"$1" | awk '
        function stamp(l) { sub(/^[^[]*\[ */, "", l); sub(/\].*/, "", l); return l + 0 }
        /Kernel panic - not syncing/ && p == "" { p = stamp($0) }
        p != "" && /Starting crashdump kernel/ { printf "%.3f\n", (stamp($0) - p) * 1000; exit }'
}
declare -A km=() # km[accel,smp,what] = space-separated ms values
kexec_module_bench() {
    local accel smp r log args st si sb mi mb how
    for smp in $smps; do
        for accel in $accels; do
            for ((r = 1; r <= runs; r++)); do
                args=(--no-build "${board[@]}" "${hvopt[@]}" --smp "$smp" --no-shell --timeout 1800)
                [[ $accel == icount ]] && args+=(--icount)
                log="$outdir/kexec-module-$accel-smp$smp-$r.log"
                # A failed boot leaves its cells empty ("-" in the table); the rest still runs.
                if "$PV_ROOT/scripts/run.sh" "${args[@]}" --scenario kexecbench --log "$log" </dev/null >/dev/null 2>"$log.err"; then
                    read -r si sb mi mb < <(module_chain_parse "$log")
                    echo "kexec-module $accel smp=$smp run=$r teardown_ms stock_idle=$si stock_busy=$sb module_idle=$mi module_busy=$mb load=$(loadavg)"
                    km[$accel,$smp,si]+="$si " km[$accel,$smp,sb]+="$sb " km[$accel,$smp,mi]+="$mi " km[$accel,$smp,mb]+="$mb "
                else
                    echo "kexec-module $accel smp=$smp run=$r kexecbench FAILED: $(tail -n1 "$log.err") load=$(loadavg)"
                fi
                for how in stock module; do
                    log="$outdir/crash-$how-$accel-smp$smp-$r.log"
                    local extra="pv.spin=$((smp - 1))"
                    [[ $how == module ]] && extra+=" pv.module=1"
                    # Stock fails the vmcore check (that is the point): only its timing is used here.
                    "$PV_ROOT/scripts/run.sh" "${args[@]}" --scenario crashspin --log "$log" \
                        --append "console=ttyAMA0 printk.time=1 $extra" </dev/null >/dev/null 2>"$log.err" || true
                    st=$(crash_stop_parse "$log")
                    if [[ -z $st ]]; then
                        echo "kexec-module $accel smp=$smp run=$r panic_stop_ms $how: no 'Kernel panic' .. 'Starting crashdump kernel' in $log ($(tail -n1 "$log.err")) load=$(loadavg)"
                        continue
                    fi
                    echo "kexec-module $accel smp=$smp run=$r panic_stop_ms $how=$st load=$(loadavg)"
                    km[$accel,$smp,crash-$how]+="$st "
                done
            done
        done
    done
}
print_kexec_module() {
    local accel smp k
    echo
    echo "Linux under parkvisor, stock vs parkvisor_stop module (guest clock, ms; median of $runs):"
    echo "kexec teardown = \"Starting new kernel\" -> \"Bye!\"; panic stop = \"Kernel panic\" -> \"Starting crashdump kernel\" with one CPU spinning with IRQs masked"
    echo
    echo "| clock | vCPUs | kexec idle: stock | module | ratio | kexec busy: stock | module | ratio | panic stop: stock | module | ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for accel in $accels; do
        for smp in $smps; do
            declare -A m=()
            for k in si sb mi mb crash-stock crash-module; do
                # shellcheck disable=SC2086
                m[$k]=$(printf '%s\n' ${km[$accel,$smp,$k]:-} | median)
            done
            awk -v a="$([[ $accel == icount ]] && echo icount || echo MTTCG)" -v n="$smp" \
                -v si="${m[si]}" -v mi="${m[mi]}" -v sb="${m[sb]}" -v mb="${m[mb]}" \
                -v cs="${m[crash-stock]}" -v cm="${m[crash-module]}" '
                function r(a, b) { return (a != "" && b > 0) ? sprintf("%.0fx", a / b) : "-" }
                function f(v, fmt) { return (v == "") ? "-" : sprintf(fmt, v) }
                BEGIN { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a, n,
                    f(si, "%.1f"), f(mi, "%.3f"), r(si, mi), f(sb, "%.1f"), f(mb, "%.3f"), r(sb, mb),
                    f(cs, "%.1f"), f(cm, "%.3f"), r(cs, cm) }'
            unset m
        done
    done
}

start=$(date +%s)
echo "bench: $what, runs=$runs, board ${board[1]:-virt}, host load $(loadavg), $(nproc) host CPUs, $(qemu-system-aarch64 --version | head -n1)"
if [[ $what == fast-stop ]]; then
    exec "$(dirname "${BASH_SOURCE[0]}")/bench-fast-stop.sh" --no-build "${board[@]}"
fi
if [[ $what == kexec-module ]]; then
    kexec_module_bench
    print_kexec_module
    echo
    echo "bench: $(($(date +%s) - start)) s, host load at the end $(loadavg)"
    exit 0
fi
case $what in
overhead) overhead_bench; boot_bench ;;
boot) boot_bench ;;
traps) traps_bench ;;
kexec) kexec_bench "${mode[@]}" ;;
all)
    overhead_bench
    kexec_bench --icount
    ((!bare_kexec)) || kexec_bench --no-hv --icount
    ;;
esac
[[ $what == kexec || $what == boot || $what == traps ]] || print_overhead
[[ $what == overhead || $what == boot ]] && print_boot
[[ $what == overhead || $what == boot || $what == traps ]] || print_kexec
if [[ $what == all ]]; then
    echo
    "$(dirname "${BASH_SOURCE[0]}")/bench-fast-stop.sh" --no-build "${board[@]}"
fi
echo
echo "bench: $(($(date +%s) - start)) s, host load at the end $(loadavg)"
