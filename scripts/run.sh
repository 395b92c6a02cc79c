#!/usr/bin/env bash
# Boot a guest under parkvisor in QEMU (or, with --no-hv, directly on QEMU).
#
# With no arguments: build everything, then boot Debian's arm64 Linux with the
# demo initramfs on 4 vCPUs, every CPU busy, and kexec twice: once the stock way
# (CPU hotplug takes the secondaries down one at a time), once with parkvisor's
# guest module (FAST_STOP parks them all at once); at the end both teardown
# times are printed side by side. On a board whose stock kernel cannot kexec
# (raspi4b: spin-table CPUs) the demo first boots the same kernel on the bare
# board (--no-hv) to show "Can't kexec: CPUs are stuck in the kernel". The
# terminal shows only the hypervisor's trace lines and the interesting guest
# lines (--verbose: everything; the log file always has everything). On a
# terminal it ends in a guest shell, otherwise it powers off.
#
# Usage: scripts/run.sh [options]
#   --kernel IMAGE       guest kernel (default: the cached Debian arm64 Image)
#   --debian N           the Debian release of the default guest kernel and its
#                        initramfs: 12 (bookworm, 6.1, default) or 13 (trixie,
#                        6.12; cached by 'scripts/setup.sh linux --debian 13')
#   --initrd FILE        guest initrd (default with the default kernel: the test initramfs)
#   --append "ARGS"      guest kernel command line (default: console=ttyAMA0
#                        printk.time=1 pv.scenario=<scenario>)
#   --scenario NAME      Linux test scenario (guest-tests/linux/init): demo, boot,
#                        hotplug, kexec, kdump, poweroff, reboot, ipibench, echo,
#                        shell; adds pv.scenario=NAME (and what it needs) to the
#                        guest arguments. reboot implies --no-reboot and, under
#                        the hypervisor, wants a "system reset" trace line
#   --board NAME         virt (GICv3, default), virt-gicv2 (GICv2, at most 8
#                        vCPUs) or raspi4b (Raspberry Pi 4 B: exactly 4 CPUs
#                        and 2G, spin-table CPUs, firmware DTB from the guest
#                        kernel package, docs/boards.md):
#                        boards/qemu-NAME/board.env
#   --smp N              vCPUs = physical CPUs (default from board.env)
#   --mem SIZE           RAM (default from board.env)
#   --hv-args "ARGS"     hypervisor command line (QEMU -append)
#   --hv FILE            hypervisor ELF (default: the release build)
#   --timeout SECONDS    kill QEMU after this long, exit 124 (default: 600, none
#                        when interactive; 0 = none)
#   --icount             deterministic time: -icount shift=0,sleep=off
#   --qemu-extra "ARGS"  more QEMU arguments (split on spaces)
#   --log FILE           also write the serial output here (default .cache/logs/)
#   --trace-plot FILE    after the run, draw its CPU state timeline (SVG) there
#   --no-reboot          a reset ends QEMU (-no-reboot) and counts as a clean end
#   --no-build           skip setup.sh and cargo build
#   --no-hv              plain QEMU baseline: boot the guest directly, EL2 off
#   --demo-baremetal     boot the bare-metal demo guest (guest-tests/guests,
#                        bootargs test=demo) instead of Linux
#   --shell / --no-shell force / forbid the interactive guest shell at the end
#   --verbose            demo: show the whole serial output, not just the
#                        trace lines and the interesting guest lines
#
# After any Linux run with a kexec, prints each kexec's CPU teardown time
# ("Starting new kernel" -> "Bye!", guest printk clock) and how it was done.
#
# Exit status: 0 when QEMU exited 0 and, under the hypervisor, a "system off"
# trace line and no hypervisor "panic" line were seen, and the guest printed no
# "PVTEST FAIL" / "GUEST FAIL" line; 124 on timeout; otherwise non-zero with a
# message on stderr (3 hypervisor panic, 4 no "system off", 5 guest failure).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

plot="" kernel="" initrd="" append="" append_set=0 scenario="" smp="" mem="" board=""
hv_args="" hv_elf="" timeout="" icount=0 qemu_extra="" log="" no_reboot=0
build=1 hv=1 demo_bm=0 shell=auto verbose=0

while [[ $# -gt 0 ]]; do
    case "$1" in
    --kernel) need_value "$1" "$#"; kernel="$2"; shift 2 ;;
    --debian) need_value "$1" "$#"; pv_set_debian "$2"; shift 2 ;;
    --initrd) need_value "$1" "$#"; initrd="$2"; shift 2 ;;
    --append) need_value "$1" "$#"; append="$2"; append_set=1; shift 2 ;;
    --scenario) need_value "$1" "$#"; scenario="$2"; shift 2 ;;
    --board) need_value "$1" "$#"; board="$2"; shift 2 ;;
    --smp) need_value "$1" "$#"; smp="$2"; shift 2 ;;
    --mem) need_value "$1" "$#"; mem="$2"; shift 2 ;;
    --hv-args) need_value "$1" "$#"; hv_args="$2"; shift 2 ;;
    --hv) need_value "$1" "$#"; hv_elf="$2"; shift 2 ;;
    --timeout) need_value "$1" "$#"; timeout="$2"; shift 2 ;;
    --icount) icount=1; shift ;;
    --qemu-extra) need_value "$1" "$#"; qemu_extra="$2"; shift 2 ;;
    --log) need_value "$1" "$#"; log="$2"; shift 2 ;;
    --trace-plot) need_value "$1" "$#"; plot="$2"; shift 2 ;;
    --no-reboot) no_reboot=1; shift ;;
    --no-build) build=0; shift ;;
    --no-hv) hv=0; shift ;;
    --demo-baremetal) demo_bm=1; shift ;;
    --shell) shell=1; shift ;;
    --no-shell) shell=0; shift ;;
    --verbose) verbose=1; shift ;;
    -h | --help) usage 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

[[ -z $board ]] || pv_select_board "$board"
[[ -n $smp ]] || smp="$DEFAULT_SMP"
[[ -n $mem ]] || mem="$DEFAULT_MEM"
[[ $smp =~ ^[1-9][0-9]*$ ]] || die "--smp wants a positive number, got '$smp'"
[[ -z ${FIXED_SMP:-} ]] || ((smp == FIXED_SMP)) ||
    die "board ${board:-$PV_BOARD} has exactly $FIXED_SMP CPUs: --smp $FIXED_SMP, got --smp $smp"
[[ -z ${MAX_SMP:-} ]] || ((smp <= MAX_SMP)) ||
    die "board ${board:-$PV_BOARD} runs at most $MAX_SMP vCPUs (its GIC serves $MAX_SMP CPUs), got --smp $smp"
[[ -z ${FIXED_MEM:-} ]] || (($(size_to_bytes "$mem") == $(size_to_bytes "$FIXED_MEM"))) ||
    die "board ${board:-$PV_BOARD} has exactly $FIXED_MEM of RAM: --mem $FIXED_MEM, got --mem $mem"
[[ -z $timeout || $timeout =~ ^[0-9]+$ ]] || die "--timeout wants seconds, got '$timeout'"
interactive=0
[[ -t 0 && -t 1 ]] && interactive=1

# --- what to boot -------------------------------------------------------------
default_linux=0
if ((demo_bm)); then
    [[ -z $kernel ]] || die "--demo-baremetal and --kernel exclude each other"
    ((hv)) || die "--demo-baremetal needs the hypervisor (no --no-hv)"
elif [[ -z $kernel ]]; then
    default_linux=1
    kernel="$PV_LINUX/Image"
    [[ -n $initrd ]] || initrd="$PV_LINUX/initramfs.cpio"
fi

linux_args=0
((default_linux)) || [[ -n $scenario ]] && linux_args=1
if ((linux_args)); then
    [[ -n $scenario ]] || scenario=demo
    case "$scenario" in
    demo | boot | hotplug | kexec | kdump | poweroff | reboot | ipibench | echo | shell | multikexec | crashspin | kexecbench | soak) ;;
    *) die "unknown scenario '$scenario'" ;;
    esac
    ((append_set)) || append="console=ttyAMA0 printk.time=1"
    # Only add what the caller did not already say.
    [[ " $append " == *" pv.scenario="* ]] || append+=" pv.scenario=$scenario"
    if [[ $scenario == kdump || $scenario == crashspin ]] && [[ " $append " != *" crashkernel="* ]]; then
        append+=" crashkernel=256M"
    fi
    [[ $scenario == reboot ]] && no_reboot=1
    if [[ $shell == 1 || ($shell == auto && $interactive == 1 && $scenario == demo) ]]; then
        [[ " $append " == *" pv.shell="* ]] || append+=" pv.shell=1"
    fi
fi
append="${append# }"
if [[ -z $timeout ]]; then
    if ((interactive)); then timeout=0; else timeout=600; fi
fi

# --- setup and build ------------------------------------------------------------
if ((build)); then
    if ((default_linux)); then "$PV_ROOT/scripts/setup.sh" linux; else "$PV_ROOT/scripts/setup.sh"; fi
    if ((hv)) && [[ -z $hv_elf ]]; then
        note "cargo build --release -p parkvisor --target aarch64-unknown-none-softfloat"
        (cd "$PV_ROOT" && cargo build -q --release -p parkvisor --target aarch64-unknown-none-softfloat) ||
            die "building the hypervisor failed"
    fi
    if ((demo_bm)); then
        note "cargo build --release -p guests --target aarch64-unknown-none"
        (cd "$PV_ROOT" && cargo build -q --release -p guests --target aarch64-unknown-none) ||
            die "building the test guests failed"
    fi
elif ((default_linux)); then
    [[ -f $PV_LINUX/READY ]] || die "no cached guest kernel in $PV_LINUX: run 'scripts/setup.sh linux --debian $PV_DEBIAN' (or drop --no-build)"
fi
pv_check_qemu
if ((default_linux)) && [[ $initrd == "$PV_LINUX/initramfs.cpio" ]]; then
    # Cheap when up to date; keeps the initramfs in step with guest-tests/linux/init.
    "$PV_ROOT/guest-tests/linux/build-initramfs.sh"
fi

if ((demo_bm)); then
    # The test guests' image (guest-tests/guests, suite chosen by test=<suite>),
    # as a raw binary for -device guest-loader.
    elf="$PV_ROOT/target/aarch64-unknown-none/release/guest"
    kernel="${PV_DEMO_GUEST:-$elf.bin}"
    if [[ -z ${PV_DEMO_GUEST:-} ]]; then
        [[ -f $elf ]] || die "no bare-metal guest at $elf (build it: drop --no-build)"
        if [[ ! -f $kernel || $elf -nt $kernel ]]; then
            aarch64-linux-gnu-objcopy -O binary "$elf" "$kernel" || die "objcopy $elf failed"
        fi
    fi
    ((append_set)) || append="test=demo"
fi

((hv)) && [[ -z $hv_elf ]] && hv_elf="$PV_ROOT/target/aarch64-unknown-none-softfloat/release/parkvisor"
[[ -f $kernel ]] || die "guest kernel '$kernel' not found"
[[ -z $initrd || -f $initrd ]] || die "initrd '$initrd' not found"
((!hv)) || [[ -f $hv_elf ]] || die "hypervisor '$hv_elf' not found (build it, or drop --no-build)"

# Under the hypervisor QEMU loads the images at fixed addresses: check they fit.
if ((hv)); then
    ram_end=$((RAM_BASE + $(size_to_bytes "$mem")))
    ksize=$(stat -c %s "$kernel")
    # An arm64 Linux Image ("ARM\x64" at 0x38) says how much memory it needs
    # (image_size, bss included) in the 8 bytes at offset 16.
    if [[ $(od -An -c -j 56 -N 4 "$kernel" | tr -d ' ') == ARMd ]]; then
        isize=$(od -An -t u8 -j 16 -N 8 "$kernel" | tr -d ' ')
        ((isize > ksize)) && ksize=$isize
    fi
    kend=$((GUEST_KERNEL_ADDR + ksize))
    if [[ -n $initrd ]]; then
        ((kend <= GUEST_INITRD_ADDR)) ||
            die "kernel ($kernel) overlaps the initrd slot at $GUEST_INITRD_ADDR"
        iend=$((GUEST_INITRD_ADDR + $(stat -c %s "$initrd")))
        ((iend <= ram_end)) ||
            die "initrd at $GUEST_INITRD_ADDR ends at $(printf %#x $iend), past RAM end $(printf %#x $ram_end): use a larger --mem"
    fi
    ((kend <= ram_end)) || die "kernel does not fit in RAM: use a larger --mem"
fi

# --- the QEMU command line (the one place it is put together) --------------------
qesc() { echo "${1//,/,,}"; } # QEMU option values: a comma is written twice
cmd=("$QEMU_BIN" -cpu "$QEMU_CPU" -smp "$smp" -m "$mem" -nographic -nic none)
# Boards where QEMU makes no device tree get theirs from the guest kernel package.
board_dtb=$(pv_board_dtb) run_dtb="" dtb_index=""
if [[ -n $board_dtb ]]; then
    cmd+=(-dtb "$board_dtb")
    dtb_index=$((${#cmd[@]} - 1))
fi
hv_boot=()
if ((hv)) && [[ ${HV_BOOT:-elf} == trampoline ]]; then
    # QEMU boots linker/boot-trampoline.S as a Linux Image, which jumps to
    # the hypervisor; -device loader puts the hypervisor's ELF segments in
    # place (docs/boards.md).
    need_cmd aarch64-linux-gnu-as "binutils-aarch64-linux-gnu"
    hv_entry=$(aarch64-linux-gnu-readelf -h "$hv_elf" | sed -n 's/^ *Entry point address: *//p')
    [[ $hv_entry =~ ^0x[0-9a-f]+$ ]] || die "cannot read the entry point of $hv_elf"
    tramp="${hv_elf%/*}/boot-trampoline-$hv_entry.bin"
    if [[ ! -f $tramp || $PV_ROOT/linker/boot-trampoline.S -nt $tramp ]]; then
        aarch64-linux-gnu-as --defsym "HV_ENTRY=$hv_entry" -o "$tramp.o$$" "$PV_ROOT/linker/boot-trampoline.S" &&
            aarch64-linux-gnu-objcopy -O binary "$tramp.o$$" "$tramp.tmp$$" &&
            mv -f "$tramp.tmp$$" "$tramp" || die "assembling linker/boot-trampoline.S failed"
        rm -f "$tramp.o$$"
    fi
    hv_boot=(-kernel "$tramp" -device "loader,file=$(qesc "$hv_elf")")
elif ((hv)); then
    hv_boot=(-kernel "$hv_elf")
fi
if ((hv)); then
    cmd+=(-M "$QEMU_MACHINE" "${hv_boot[@]}")
    [[ -n $hv_args ]] && cmd+=(-append "$hv_args")
    if [[ -n $board_dtb ]]; then
        # With -dtb, guest-loader's /chosen/module@ nodes do not reach the
        # DTB in memory (QEMU 10 raspi4b): write them into this run's copy
        # (the same Xen multiboot binding) and load the files with the
        # generic loader.
        run_dtb=$(mktemp "${TMPDIR:-/tmp}/pv-run-XXXXXX.dtb")
        cp "$board_dtb" "$run_dtb"
        add_module() { # ADDR FILE COMPATIBLE [BOOTARGS]
            local node
            node="/chosen/module@$(printf %x "$1")"
            fdtput -c "$run_dtb" "$node" &&
                fdtput -t s "$run_dtb" "$node" compatible multiboot,module "$3" &&
                fdtput -t x "$run_dtb" "$node" reg 0 "$1" 0 "$(printf %#x "$(stat -c %s "$2")")" &&
                if [[ $# -ge 4 ]]; then fdtput -t s "$run_dtb" "$node" bootargs "$4"; fi ||
                die "cannot add $node to $run_dtb"
        }
        add_module "$GUEST_KERNEL_ADDR" "$kernel" multiboot,kernel "$append"
        cmd+=(-device "loader,file=$(qesc "$kernel"),addr=$GUEST_KERNEL_ADDR,force-raw=on")
        if [[ -n $initrd ]]; then
            add_module "$GUEST_INITRD_ADDR" "$initrd" multiboot,ramdisk
            cmd+=(-device "loader,file=$(qesc "$initrd"),addr=$GUEST_INITRD_ADDR,force-raw=on")
        fi
        cmd[${dtb_index}]=$run_dtb
    else
        cmd+=(-device "guest-loader,addr=$GUEST_KERNEL_ADDR,kernel=$(qesc "$kernel"),bootargs=$(qesc "$append")")
        [[ -n $initrd ]] && cmd+=(-device "guest-loader,addr=$GUEST_INITRD_ADDR,initrd=$(qesc "$initrd")")
    fi
else
    cmd+=(-M "$QEMU_MACHINE_PLAIN" -kernel "$kernel")
    [[ -n $initrd ]] && cmd+=(-initrd "$initrd")
    [[ -n $append ]] && cmd+=(-append "$append")
fi
((icount)) && cmd+=(-icount "shift=0,sleep=off")
((hv)) && [[ ${ALWAYS_NO_REBOOT:-} == 1 ]] && no_reboot=1
((no_reboot)) && cmd+=(-no-reboot)
if [[ -n $qemu_extra ]]; then
    read -ra extra <<<"$qemu_extra"
    cmd+=("${extra[@]}")
fi

if [[ -z $log ]]; then
    mkdir -p "$PV_CACHE/logs"
    log="$PV_CACHE/logs/run-$(date +%Y%m%d-%H%M%S)-$$.log"
    ln -sfn "$(basename "$log")" "$PV_CACHE/logs/last.log"
else
    mkdir -p "$(dirname "$log")"
fi

# A board whose stock kernel cannot kexec (raspi4b: spin-table CPUs) opens
# the demo with that: the same guest on the bare board first.
if [[ $scenario == demo && $hv == 1 && $default_linux == 1 && ${DEMO_BARE_FIRST:-} == 1 ]]; then
    bare_log="${log%.log}-bare.log"
    echo "=== without parkvisor: stock Linux on the bare $PV_BOARD board, kexec (log: $bare_log) ==="
    set +e
    "$0" --no-build --board "${board:-${PV_BOARD#qemu-}}" --no-hv --scenario kexec --no-shell \
        --timeout 300 --log "$bare_log" 2>&1 | tr -d '\r' |
        grep -a -E --line-buffered "smp: Brought up|PVTEST kexec|Can't kexec|reboot: |run.sh: (ok|FAILED|TIMEOUT)"
    set -e
    echo "=== under parkvisor: the same kernel, stock kexec then the guest module's FAST_STOP kexec ==="
fi

shell_words() { # print a command line readably, quoting only where needed
    local w out=""
    for w in "$@"; do
        if [[ $w =~ ^[][A-Za-z0-9_./=,:+@%-]+$ ]]; then
            out+=" $w"
        elif [[ $w != *"'"* ]]; then
            out+=" '$w'"
        else
            out+=" $(printf %q "$w")"
        fi
    done
    echo "${out# }"
}
note "$(shell_words "${cmd[@]}")"
note "serial log: $log${timeout:+, timeout ${timeout}s}"
((interactive)) && note "Ctrl-A X quits QEMU; Ctrl-C goes to the guest"

stty_saved=""
((interactive)) && stty_saved=$(stty -g 2>/dev/null || true)
restore_tty() {
    [[ -z $stty_saved ]] || stty "$stty_saved" 2>/dev/null || true
    [[ -z $run_dtb ]] || rm -f "$run_dtb"
}
trap restore_tty EXIT

# QEMU runs as a background job so that a signal to run.sh (a harness giving
# up, Ctrl-C outside QEMU's raw mode) also ends QEMU instead of orphaning it.
# Background jobs get /dev/null as stdin, so hand over the real one as fd 3
# (or /dev/null when there is none: CI may run us with stdin closed). A pipe or
# FIFO as stdin reaches the guest's serial input like typed keys (Enter = "\r";
# guest-tests/linux/console-echo.sh feeds a line that way).
{ exec 3<&0; } 2>/dev/null || exec 3</dev/null
qpid=""
on_signal() {
    [[ -z $qpid ]] || kill -TERM "$qpid" 2>/dev/null || true
    restore_tty
    note "interrupted; QEMU stopped (log: $log)"
    exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
runner=()
((timeout > 0)) && runner=(timeout --foreground -k 5 "$timeout")
# The demo's terminal view: the hypervisor's trace lines, the test markers and
# banners, and the guest lines that tell what happened to the CPUs; the boot
# noise only goes to the log. Once the guest shell starts, everything passes
# (read in chunks, so a prompt without a newline shows at once).
view=(cat)
if [[ $scenario == demo && $verbose == 0 ]]; then
    view=(perl -e '
        $| = 1; my ($buf, $all) = ("", 0);
        my $show = qr/^\[hv |PVTEST|^===|Linux version|Starting new kernel|Bye!|parkvisor_stop: (kexec|crash|parkvisor|not)|psci: CPU\d+ killed|Kernel panic|Starting crashdump|failed to stop|stale|BUG|Oops|Call trace|parkvisor guest shell/;
        while (sysread(STDIN, my $chunk, 4096)) {
            if ($all) { print $chunk; next }
            $buf .= $chunk;
            while ($buf =~ s/^([^\n]*\n)//) {
                my $line = $1;
                print $line if $line =~ $show;
                if ($line =~ /parkvisor guest shell/) { $all = 1; print $buf; $buf = ""; last }
            }
        }
        print $buf if $all')
    note "terminal shows the trace and the key guest lines (--verbose: everything; all of it is in the log)"
fi
t0=$(now_ms)
# The log writer on fd 4, its pid kept: a bare `wait` does not wait for a
# process substitution, and under load run.sh (and a harness reading its
# stdout) used to read the log before tee had written the last lines, or
# before it had created the file at all.
exec 4> >(tee "$log" | "${view[@]}")
teepid=$!
"${runner[@]}" "${cmd[@]}" <&3 >&4 &
qpid=$!
exec 4>&-
# A board without firmware power-off (raspi4b) only halts a bare guest's
# CPUs ("reboot: System halted"/"Power down") and QEMU keeps running: then
# stop QEMU and count it as a clean end.
halted="" watcher=""
if ((!hv)) && [[ ${BARE_POWEROFF:-} == halt ]]; then
    halted=$(mktemp "${TMPDIR:-/tmp}/pv-halted.XXXXXX")
    rm -f "$halted"
    (
        while kill -0 "$qpid" 2>/dev/null; do
            if grep -a -q -E 'reboot: (System halted|Power down|Restarting system)' "$log" 2>/dev/null; then
                sleep 1 # the last lines reach the log
                : >"$halted"
                kill -TERM "$qpid" 2>/dev/null
                exit 0
            fi
            sleep 0.5
        done
    ) &
    watcher=$!
fi
set +e
wait "$qpid"
status=$?
set -e
qpid=""
if [[ -n $watcher ]]; then
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    if [[ -f $halted ]]; then
        note "the guest halted; this board has no firmware power-off, so QEMU was stopped"
        status=0
        rm -f "$halted"
    fi
fi
wait "$teepid" 2>/dev/null || true # tee (and the view) drained the last output
exec 3<&-
restore_tty
secs=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
if [[ -n $plot ]]; then
    "$PV_ROOT/scripts/trace-plot.sh" "$log" "$plot" >&2 || note "trace plot failed (see above)"
    note "CPU state timeline: $plot"
fi

# --- kexec teardown times -------------------------------------------------------
# Each "kexec_core: Starting new kernel" -> "Bye!" interval on the guest's printk
# clock is the CPU teardown. With parkvisor's module a "FAST_STOP parked" line
# lies in between; stock, one "psci: CPUn killed" line per secondary.
teardowns=$(tr -d '\r' <"$log" | awk '
    function stamp(l) { return substr(l, index(l, "[") + 1, index(l, "]") - index(l, "[") - 1) + 0 }
    /kexec_core: Starting new kernel/ { t = stamp($0); killed = 0; fast = ""; hv = ""; open = 1; next }
    open && /psci: CPU[0-9]+ killed/ { killed++ }
    open && /parkvisor_stop: kexec: (FAST_STOP parked|stopped)/ { fast = $0; sub(/.*kexec: /, "", fast) }
    open && /parkvisor_stop: kexec: FAST_STOP failed/ { fast = "failed" }
    open && /^\[hv .*fast-stop end/ { hv = $0; sub(/.*elapsed_ns=/, "", hv) }
    open && /Bye!/ {
        ms = (stamp($0) - t) * 1000; n++
        if (fast != "" && fast != "failed") how = "parkvisor_stop module: stop IPI, FAST_STOP for the rest"
        else how = "stock Linux: CPU hotplug, " killed " CPUs one at a time"
        printf "%d %.3f %s\n", n, ms, how
        open = 0
    }')
if [[ -n $teardowns ]]; then
    echo
    echo "kexec CPU teardown (guest clock, \"Starting new kernel\" -> \"Bye!\"), $smp vCPUs:"
    first_stock=""
    while read -r n ms how; do
        ratio=""
        [[ $how == stock* && -z $first_stock ]] && first_stock=$ms
        if [[ $how == parkvisor* && -n $first_stock ]]; then
            ratio=$(awk -v a="$first_stock" -v b="$ms" 'BEGIN { if (b > 0) printf "  (%.0fx faster than stock)", a / b }')
        fi
        printf '  kexec %s  %10s ms  %s%s\n' "$n" "$ms" "$how" "$ratio"
    done <<<"$teardowns"
fi

# --- verdict --------------------------------------------------------------------
if ((status == 124)); then
    note "TIMEOUT: QEMU killed after ${timeout}s (log: $log)"
    exit 124
fi
if ((status != 0)); then
    note "FAILED: QEMU exited with status $status after ${secs}s (log: $log)"
    exit "$status"
fi
# Serial lines may end in \r; strip it before matching.
clean() { tr -d '\r' <"$log"; }
if ((hv)); then
    if line=$(clean | grep -a -m1 -E '^\[hv [0-9.]+\] cpu[0-9]+ panic '); then
        note "FAILED: hypervisor panic: $line (log: $log)"
        exit 3
    fi
    end_re='system off'
    ((no_reboot)) && end_re='system (off|reset)'
    [[ $scenario == reboot ]] && end_re='system reset'
    if ! clean | grep -a -q -E "^\[hv [0-9.]+\] cpu[0-9]+ $end_re"; then
        note "FAILED: QEMU exited 0 but no '$end_re' trace line was seen (log: $log)"
        exit 4
    fi
fi
# Guest markers go through the kernel log: "[  1.234567] PVTEST FAIL ...".
# (bare-metal test guests print "GUEST FAIL <test>: ...").
if line=$(clean | grep -a -m1 -E '(^|\] )PVTEST FAIL|^GUEST FAIL'); then
    note "FAILED: guest reported: $line (log: $log)"
    exit 5
fi
note "ok: QEMU exited 0 after ${secs}s"
