#!/usr/bin/env bash
# FAST_STOP vs CPU_OFF: how long the boot vCPU needs to get every secondary
# out of the guest with confirmed exit, per vCPU count, by (a) one FAST_STOP,
# (b) serial CPU_OFF + AFFINITY_INFO polling (what a stock kernel does),
# (c) every CPU_OFF requested at once + AFFINITY_INFO polling; and
# what the trace costs: FAST_STOP, CPU_ON -> ON and CPU_OFF -> OFF latency
# with the default trace and with trace=off, each with and without a real
# UART's speed (console-baud=115200), ratios against trace=off measured in
# the same run. The guest is
# the bare-metal bench suite (guest-tests/guests/src/suites/bench.rs,
# test=bench); results are explained in docs/benchmarks.md.
#
# Usage: scripts/bench-fast-stop.sh [options]
#   --runs K             measurements per method per boot, median reported
#                        (default 3; the guest stops early once a method has
#                        used its guest-time budget, see --budget-ms)
#   --smp "LIST"         vCPU counts (default "2 4 8 16 32 64")
#   --modes "LIST"       icount and/or mttcg (default "icount mttcg")
#   --icount-serial-max N  under icount, run serial_cpu_off only up to N vCPUs
#                        (default 8; it costs about N*(N-1) 100 ms icount
#                        slices: ~1.5 host minutes at 16 vCPUs, ~5 at 32)
#   --budget-ms MS       guest time per method after which no further run
#                        starts (default 10000)
#   --jobs J             icount boots run J at a time (default 2; icount
#                        figures do not depend on host load; MTTCG boots
#                        always run one at a time, after the icount ones)
#   --configs "LIST"     hypervisor trace configurations (default
#                        "default off baud off+baud": default trace,
#                        trace=off, console-baud=115200, both)
#   --methods LIST       guest methods, comma separated (default: all that
#                        --icount-serial-max allows; e.g. fast_stop,cpu_on_off
#                        for the trace-cost table alone)
#   --board NAME         run.sh's board (default virt); a board with a fixed
#                        CPU count and RAM (raspi4b: 4, 2G) runs only those
#   --no-build           do not build; use the existing release ELFs (the
#                        hypervisor's from target/uart-model: built with the
#                        uart-model feature that console-baud= needs)
#   --out DIR            logs and results (default .cache/bench-fast-stop/<time>)
# Prints per-boot summary lines on stderr and a Markdown table per mode on
# stdout. Exit status non-zero if any boot failed its sanity checks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=3 smps="2 4 8 16 32 64" modes="icount mttcg" serial_max=8 budget=10000
jobs=2 build=1 out="" methods_opt="" configs="default off baud off+baud" board=() mem=1G
while [[ $# -gt 0 ]]; do
    case "$1" in
    --runs) need_value "$1" "$#"; runs="$2"; shift 2 ;;
    --smp) need_value "$1" "$#"; smps="$2"; shift 2 ;;
    --modes) need_value "$1" "$#"; modes="$2"; shift 2 ;;
    --icount-serial-max) need_value "$1" "$#"; serial_max="$2"; shift 2 ;;
    --budget-ms) need_value "$1" "$#"; budget="$2"; shift 2 ;;
    --jobs) need_value "$1" "$#"; jobs="$2"; shift 2 ;;
    --methods) need_value "$1" "$#"; methods_opt="$2"; shift 2 ;;
    --configs) need_value "$1" "$#"; configs="$2"; shift 2 ;;
    --board) need_value "$1" "$#"; pv_select_board "$2"; board=(--board "$2"); shift 2 ;;
    --no-build) build=0; shift ;;
    --out) need_value "$1" "$#"; out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
# A board with a fixed CPU count and RAM (raspi4b) runs at those only.
[[ -z ${FIXED_SMP:-} ]] || smps=$FIXED_SMP
[[ -z ${FIXED_MEM:-} ]] || mem=$FIXED_MEM
for v in "$runs" "$serial_max" "$budget" "$jobs"; do
    [[ $v =~ ^[0-9]+$ ]] || die "numeric option wanted, got '$v'"
done
((runs >= 1 && jobs >= 1)) || die "--runs and --jobs must be at least 1"
for n in $smps; do
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 2 && n <= 64)) || die "--smp: 2..64 each, got '$n'"
done
for c in $configs; do
    [[ $c =~ ^(default|off|baud|off\+baud)$ ]] || die "--configs: default, off, baud, off+baud; got '$c'"
done
cfg_args() {
    case $1 in
    default) echo "" ;;
    off) echo "trace=off" ;;
    baud) echo "console-baud=115200" ;;
    off+baud) echo "trace=off console-baud=115200" ;;
    esac
}
for m in $modes; do
    [[ $m == icount || $m == mttcg ]] || die "--modes: icount and/or mttcg, got '$m'"
done

t_start=$(now_ms)
[[ -n $out ]] || out="$PV_CACHE/bench-fast-stop/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
guest_elf="$PV_ROOT/target/aarch64-unknown-none/release/guest"
# The uart-model feature makes console-baud= (configs baud, off+baud) work;
# its own target directory keeps the ordinary release build as it is.
hv_elf="$PV_ROOT/target/uart-model/aarch64-unknown-none-softfloat/release/parkvisor"
if ((build)); then
    note "building (cargo build --release: parkvisor --features uart-model, guests)"
    (cd "$PV_ROOT" &&
        cargo build -q --release -p parkvisor --features uart-model \
            --target aarch64-unknown-none-softfloat --target-dir target/uart-model &&
        cargo build -q --release -p guests --target aarch64-unknown-none) || die "build failed"
fi
[[ -f $guest_elf && -f $hv_elf ]] || die "no release build (drop --no-build)"
# A private copy of both images: other work in the tree may rebuild them
# while the boots run.
cp "$hv_elf" "$out/parkvisor.elf"
aarch64-linux-gnu-objcopy -O binary "$guest_elf" "$out/guest.bin" || die "objcopy failed"
# ... and of the runner: bash reads a script as it goes, so an edit to
# scripts/run.sh during a long boot would otherwise break that boot.
mkdir -p "$out/snap/scripts"
cp "$PV_ROOT/scripts/run.sh" "$PV_ROOT/scripts/lib.sh" "$PV_ROOT/scripts/setup.sh" "$out/snap/scripts/"
ln -sfn "$PV_ROOT/boards" "$out/snap/boards"
# raspi4b's run.sh assembles its boot trampoline from linker/.
ln -sfn "$PV_ROOT/linker" "$out/snap/linker"
export PV_CACHE

# One boot: mode config N -> $out/<mode>-<config>-<N>.log (+ .err); status in .rc.
boot() {
    local mode=$1 cfg=$2 n=$3 log="$out/$1-$2-$3.log" methods="" extra=()
    [[ $mode == icount ]] && extra+=(--icount)
    if [[ $mode == icount ]] && ((n > serial_max)); then
        methods=" methods=fast_stop,parallel_cpu_off,cpu_on_off"
    fi
    [[ -n $methods_opt ]] && methods=" methods=$methods_opt"
    local hv_args
    hv_args=$(cfg_args "$cfg")
    [[ -n ${hv_args// /} ]] && extra+=(--hv-args "${hv_args# }")
    local t0 rc=0 load
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(now_ms)
    "$out/snap/scripts/run.sh" --no-build "${board[@]}" --hv "$out/parkvisor.elf" --kernel "$out/guest.bin" \
        --append "test=bench reps=$runs budget_ms=$budget$methods" \
        --smp "$n" --mem "$mem" --timeout 1500 --log "$log" "${extra[@]}" \
        </dev/null >/dev/null 2>"$log.err" || rc=$?
    echo "$rc $(($(now_ms) - t0)) $load" >"$log.rc"
}

# Summary of one log as KEY=VALUE words (missing values stay empty).
summarize() {
    tr -d '\r' <"$1" | awk '
        function stamp(l) { sub(/^\[hv /, "", l); sub(/\].*/, "", l); return l * 1e9 }
        function med(a, k,   i, j, t) {   # median of a[1..k] (insertion sort)
            for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        function val(l, key,   m) { m = l; if (!sub(".* " key "=", "", m)) return ""; sub(/ .*/, "", m); return m }
        /^BENCH n=/ {
            meth = val($0, "method")
            g[meth] = val($0, "guest_ns"); r[meth] = val($0, "rounds")
            if (meth == "fast_stop") { hv = val($0, "hv_ns"); calls = val($0, "calls"); sgi = val($0, "sgi_writes") }
            if (meth == "cpu_on") on = val($0, "guest_ns")
            if (meth == "cpu_off") off = val($0, "guest_ns")
        }
        /^GUEST FAIL/ { fail++ }
        /^GUEST DONE/ { done = 1 }
        /^\[hv [0-9.]+\] cpu[0-9]+ fast-stop begin/ { begins++; inside = 1; first = "" }
        inside && /^\[hv [0-9.]+\] cpu[0-9]+ state .* \(fast-stop\)$/ { if (first == "") first = stamp($0) }
        /^\[hv [0-9.]+\] cpu[0-9]+ fast-stop end/ {
            ends++; inside = 0
            if ($0 !~ / end result=0 /) bad++
            if (first != "") work[++nw] = stamp($0) - first
        }
        END {
            printf "on=%s off=%s fast=%s hv=%s serial=%s parallel=%s rf=%s rs=%s rp=%s calls=%s sgi=%s begins=%d ends=%d badend=%d work=%s fail=%d done=%d\n",
                on, off, g["fast_stop"], hv, g["serial_cpu_off"], g["parallel_cpu_off"],
                r["fast_stop"], r["serial_cpu_off"], r["parallel_cpu_off"],
                calls, sgi, begins, ends, bad, (nw ? med(work, nw) : ""), fail, done
        }'
}

# --- run the boots ------------------------------------------------------------
failed=0
for mode in $modes; do
    if [[ $mode == icount ]]; then
        # Largest first so the long boots overlap; deterministic figures.
        order=$(printf '%s\n' $smps | sort -rn)
        active=0
        for n in $order; do
            for cfg in $configs; do
                note "icount: boot with $n vCPUs ($cfg)"
                boot icount "$cfg" "$n" &
                active=$((active + 1))
                if ((active >= jobs)); then
                    wait -n || true
                    active=$((active - 1))
                fi
            done
        done
        wait
    else
        for n in $smps; do
            for cfg in $configs; do
                note "mttcg: boot with $n vCPUs ($cfg)"
                boot mttcg "$cfg" "$n"
            done
        done
    fi
done

# --- judge and tabulate ---------------------------------------------------------
us() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }' || echo "–"; }
ratio() { [[ -n $1 && -n $2 && $2 != 0 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }' || echo "–"; }
ratio2() { [[ -n $1 && -n $2 && $2 != 0 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }' || echo "–"; }
declare -A F ON OFF
for mode in $modes; do
    echo
    case $mode in
    icount) echo "### icount (\`-icount shift=0,sleep=off\`: 1 guest instruction = 1 ns, one host thread, round-robin)" ;;
    mttcg) echo "### MTTCG (one host thread per vCPU, 2 host cores)" ;;
    esac
    echo
    echo "| N | trace | T_fast µs (guest) | x3 µs (hv) | T_serial µs | T_parallel µs | serial/fast | parallel/fast | T_fast/(N−1) µs | parkvisor work µs | runs f/s/p | boot s (host load) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for n in $smps; do
        for cfg in $configs; do
            log="$out/$mode-$cfg-$n.log"
            read -r rc ms load <"$log.rc" || { rc=99 ms=0 load=-; }
            s_on="" s_off="" s_fast="" s_hv="" s_serial="" s_parallel="" s_work=""
            s_fail=0 s_done=0 s_begins=0 s_ends=0 s_calls=0 s_badend=0
            eval "$(summarize "$log" | tr ' ' '\n' | sed 's/^/s_/')"
            problems=""
            # With trace=off there is no 'system off' line, which run.sh
            # reports as exit 4 although the guest finished (GUEST DONE).
            ((rc == 0)) || [[ $cfg == off* && $rc == 4 ]] ||
                problems+=" run.sh exit $rc ($(tail -n1 "$log.err" 2>/dev/null));"
            ((s_fail == 0)) || problems+=" $s_fail GUEST FAIL line(s);"
            ((s_done == 1)) || problems+=" no GUEST DONE;"
            if [[ -n $s_calls && $cfg != off* ]]; then
                ((s_begins == s_calls && s_ends == s_calls)) ||
                    problems+=" $s_calls FAST_STOP calls but $s_begins begin / $s_ends end trace lines;"
            fi
            ((s_badend == 0)) || problems+=" $s_badend fast-stop end line(s) with result != 0;"
            if [[ -n $problems ]]; then
                failed=1
                note "$mode $cfg n=$n: FAILED:$problems log: $log"
            fi
            F[$mode,$cfg,$n]=$s_fast ON[$mode,$cfg,$n]=$s_on OFF[$mode,$cfg,$n]=$s_off
            per=""
            [[ -n $s_fast ]] && per=$(awk -v a="$s_fast" -v n="$n" 'BEGIN { printf "%.0f", a / (n - 1) }')
            note "$mode $cfg n=$n: fast=${s_fast}ns hv=${s_hv}ns on=${s_on}ns off=${s_off}ns serial=${s_serial}ns parallel=${s_parallel}ns trace begin/end=$s_begins/$s_ends (calls $s_calls) work=${s_work}ns boot ${ms}ms"
            serial_cell=$(us "$s_serial")
            [[ $mode == icount && $n -gt $serial_max ]] && serial_cell="not run"
            echo "| $n | $cfg | $(us "$s_fast") | $(us "$s_hv") | $serial_cell | $(us "$s_parallel") | $(ratio "$s_serial" "$s_fast") | $(ratio "$s_parallel" "$s_fast") | $(us "$per") | $(us "$s_work") | ${s_rf:-–}/${s_rs:-–}/${s_rp:-–} | $(awk -v m="$ms" 'BEGIN { printf "%.0f", m / 1000 }') ($load) |"
        done
    done
    # The trace's cost: each configuration against trace=off at the same
    # console speed, measured in this run.
    echo
    echo "#### What the trace costs ($mode): guest-measured medians, ratio against \`trace=off\` at the same console speed"
    echo
    echo "| N | trace | console | FAST_STOP µs | per stopped vCPU µs | CPU_ON→ON µs | CPU_OFF→OFF µs | FAST_STOP ratio | CPU_ON ratio | CPU_OFF ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for n in $smps; do
        for cfg in $configs; do
            case $cfg in
            default) tr=default con=instant base=off ;;
            off) tr=off con=instant base=off ;;
            baud) tr=default con=115200 base=off+baud ;;
            off+baud) tr=off con=115200 base=off+baud ;;
            esac
            f=${F[$mode,$cfg,$n]:-} on=${ON[$mode,$cfg,$n]:-} off=${OFF[$mode,$cfg,$n]:-}
            [[ -z $f$on$off ]] && continue
            per=""
            [[ -n $f ]] && per=$(awk -v a="$f" -v n="$n" 'BEGIN { printf "%.0f", a / (n - 1) }')
            echo "| $n | $tr | $con | $(us "$f") | $(us "$per") | $(us "$on") | $(us "$off") | $(ratio2 "$f" "${F[$mode,$base,$n]:-}") | $(ratio2 "$on" "${ON[$mode,$base,$n]:-}") | $(ratio2 "$off" "${OFF[$mode,$base,$n]:-}") |"
        done
    done
done
echo
secs=$(( ($(now_ms) - t_start) / 1000 ))
echo "Run: \`scripts/bench-fast-stop.sh${board[*]:+ ${board[*]}} --runs $runs --smp \"$smps\" --modes \"$modes\" --configs \"$configs\"${methods_opt:+ --methods $methods_opt} --icount-serial-max $serial_max --budget-ms $budget\` — ${secs} s wall, logs in \`${out#"$PV_ROOT/"}\`."
note "done in ${secs}s; logs in $out"
exit "$failed"
