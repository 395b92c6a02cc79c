#!/usr/bin/env bash
# Runs every test of the project and ends with "test.sh: N passed, M failed":
#   0. code gates: cargo fmt --check, clippy -D warnings (EL2 crate, host
#      crates, guests), shellcheck on every script;
#   1. host unit tests of the portable core, the harness and the plot tool;
#   2. loom model checks of the park / CPU_ON / fast-stop protocols;
#   3. the bare-metal guest suites under parkvisor in QEMU (harness): every
#      suite at 1, 2, 4 and 8 vCPUs, and fast_stop, fuzz, gic_off again at
#      2, 8 and 32 vCPUs; the stress suite at 8 and 32 vCPUs, a 60 s Linux
#      soak at 8;
#   4. stock Debian arm64 Linux under parkvisor: boot at 1, 2, 4 and 8 vCPUs;
#      hotplug, kexec, kdump, poweroff, reboot and console input at 4 vCPUs;
#   5. the same Linux with parkvisor's guest module (guest-tests/linux/module)
#      at 4 and 8 vCPUs: kexec with every CPU busy, three kexecs under a serial
#      console flood, a crash dump with a CPU spinning with interrupts masked
#      (vmcore notes checked in the capture kernel), and on plain QEMU; the
#      module's fallback at 4, and under -icount at 2 vCPUs a bare-metal boot
#      and the crash dump; options given without their value; checkpatch on
#      the module, and at 4 and 8 vCPUs kexecs under a /dev/kmsg flood, a
#      crash dump with a CPU taking an irq_desc lock in a loop (vmcore online
#      mask and pids checked), a partial FAST_STOP retried.
# The Linux steps (4, 5) are specs in the harness (harness linux --list):
# how each runs and what its serial log must and must not show.
# Installs what is missing first (scripts/setup.sh linux). Each step's output
# goes to .cache/logs/test-<step>.log; a failing step shows its tail.
# PV_TEST_ONLY=REGEX runs only the steps whose names match (bash regex), e.g.
# PV_TEST_ONLY='^gicv2-' scripts/test.sh; a step that reads an earlier
# step's output (the trace checks after the panic and stress steps) wants
# that step in the selection too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

scripts/setup.sh linux

logs=.cache/logs
mkdir -p "$logs"
passed=0 failed=0 failed_steps=()
suite_start=$(date +%s)

# step NAME COMMAND...: runs one step, counts it, shows the tail on failure.
step() {
    local name=$1
    shift
    [[ -z ${PV_TEST_ONLY:-} || $name =~ $PV_TEST_ONLY ]] || return 0
    local log="$logs/test-$name.log" start rc
    start=$(date +%s)
    echo "=== $name"
    # `|| rc=$?`, not set +e/-e: a step function that sets -e itself must
    # not be able to end the whole run without its summary.
    rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "=== $name: ok ($(($(date +%s) - start)) s)"
    else
        failed=$((failed + 1))
        failed_steps+=("$name")
        echo "=== $name: FAILED (exit $rc, $(($(date +%s) - start)) s); last lines of $log:"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
}

hv_elf=target/aarch64-unknown-none-softfloat/release/parkvisor
# linux_step NAME: a Linux scenario step, started and judged by the harness
# against its spec (guest-tests/harness/src/linux.rs: what it runs, the lines
# its log must and must not show; `harness linux --list` prints them all).
linux_step() { step "$1" cargo run --release -q -p harness -- linux --log-dir "$logs" --hv "$hv_elf" "$1"; }

# Code gates: formatting, lints (the core denies unsafe code, arch denies
# undocumented unsafe blocks: hypervisor/src/lib.rs) and shell scripts.
code_gates() {
    local -a scripts
    mapfile -t scripts < <(git ls-files '*.sh' .ci/run guest-tests/linux/init)
    cargo fmt --all --check &&
        cargo clippy --release -p parkvisor --target aarch64-unknown-none-softfloat -- -D warnings &&
        cargo clippy --release -p parkvisor -p parkvisor-abi -p trace-plot -p harness -p guestlib --all-targets -- -D warnings &&
        cargo clippy --release -p guests -p guestlib --target aarch64-unknown-none -- -D warnings &&
        shellcheck -x -P SCRIPTDIR -S warning "${scripts[@]}"
}
step code-gates code_gates
step host-unit-tests cargo test --release -p parkvisor -p parkvisor-abi -p trace-plot -p harness -p guestlib
# Loom explores every interleaving up to LOOM_MAX_PREEMPTIONS preemptions.
if [[ -f hypervisor/tests/loom.rs ]]; then
    step loom-model-checks env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
        timeout 1500 cargo test --release -p parkvisor --test loom
else
    echo "=== loom-model-checks: no hypervisor/tests/loom.rs in this tree, not run"
fi
step build-el2-images bash -c '
    cargo build --release -p parkvisor --target aarch64-unknown-none-softfloat &&
    cargo build --release -p guests --target aarch64-unknown-none'

step bare-metal-suites cargo run --release -q -p harness -- --smp 1,2,4,8
grep -E '^harness: ' "$logs/test-bare-metal-suites.log" || true
step fast-stop-suites cargo run --release -q -p harness -- --smp 2,8,32 fast_stop fuzz gic_off

# --- isolation (DMA masters withheld, GIC mediation, every GICR
# region). The isolation suite also runs in bare-metal-suites (1, 2, 4, 8
# vCPUs); the DTB filter and GIC decision tests are in host-unit-tests.
# Past 123 vCPUs QEMU virt opens a second redistributor region: the last
# CPUs must come ON and stop (about 5 s; only three vCPUs ever run).
step isolation-scale-126cpu cargo run --release -q -p harness -- --smp 126 scale
# --- end isolation

# --- conformance and stress (exception entry, PSCI, EL2 hygiene) ---
# The `exception`, `psci` and `system_off2` suites already run above in
# bare-metal-suites (every default suite at 1, 2, 4, 8 vCPUs). `stress`
# (1000 all-core CPU_OFF/CPU_ON rounds, 1000 random hotplug operations, the
# CPU_ON race, FAST_STOP during CPU_ON/CPU_OFF storms) runs at 8 and 32
# vCPUs; the Linux soak (random hotplug + IPI ping-pong) runs 60 s at 8
# vCPUs (the 10-minute run: docs/psci-conformance.md, "Stress").
# Full counts at both sizes (1000 rounds / operations): on an otherwise idle
# 2-core host about 10 s at 8 vCPUs and under a minute at 32 (12 min when
# the host is shared with other jobs: lower it with STRESS_ROUNDS_32=N).
step stress-suite-8cpu cargo run --release -q -p harness -- --smp 8 stress
step stress-suite-32cpu cargo run --release -q -p harness -- --smp 32 \
    --guest-args "stress_rounds=${STRESS_ROUNDS_32:-1000}" stress
linux_step linux-soak-8cpu
# --- end of the conformance block ---

# A hypervisor panic must never look like success: the deliberate panic of
# debug=panic must print its panic line, make run.sh fail, and (with the
# test-only semihosting exit) end QEMU itself with a failure status.
hypervisor_panic_fails_the_run() {
    local out="$logs/hv-panic.serial" msgs="$logs/hv-panic.run" rc=0
    scripts/run.sh --no-build --hv "$hv_elf" --kernel target/aarch64-unknown-none/release/guest.bin \
        --append "test=demo" --smp 2 --timeout 60 --no-shell --log "$out" \
        --hv-args "panic-exit=semihosting debug=panic" \
        --qemu-extra "-semihosting-config enable=on,target=native" 2>"$msgs" || rc=$?
    cat "$msgs"
    echo "run.sh exit status: $rc"
    [[ $rc -ne 0 ]] &&
        grep -q "cpu0 panic .*deliberate hypervisor panic" "$out" &&
        grep -q "QEMU exited with status 1" "$msgs"
}
step hypervisor-panic hypervisor_panic_fails_the_run

# --- trace off the critical path ---
# The panic above happens with the boot banner recorded in cpu0's trace ring
# but not yet printed: the panic must print it first, then the panic line.
panic_prints_pending_trace_first() {
    local out="$logs/hv-panic.serial"
    grep -n "cpu0 boot parkvisor" "$out" | head -n1 | cut -d: -f1 >"$logs/hv-panic.order"
    grep -n "cpu0 panic " "$out" | head -n1 | cut -d: -f1 >>"$logs/hv-panic.order"
    cat "$logs/hv-panic.order"
    [[ $(wc -l <"$logs/hv-panic.order") -eq 2 ]] &&
        (($(sed -n 1p "$logs/hv-panic.order") < $(sed -n 2p "$logs/hv-panic.order")))
}
step hypervisor-panic-prints-pending-trace panic_prints_pending_trace_first
# The console at a real UART's speed: the suites still pass (and their trace
# still chains) when every byte costs its time at 115200 baud.
# (console-baud= needs a build with the uart-model feature, kept apart.)
step bare-metal-console-baud bash -c '
    cargo build --release -p parkvisor --features uart-model \
        --target aarch64-unknown-none-softfloat --target-dir target/uart-model &&
    cargo run --release -q -p harness -- --strict-trace --hv-args console-baud=115200 \
        --hv target/uart-model/aarch64-unknown-none-softfloat/release/parkvisor \
        --smp 4 fast_stop ipi psci'
# A guest that goes silent (as a hung one would) must still see its trace:
# the `silent` guest records a mark and a CPU_ON/CPU_OFF, then never touches
# the UART again; only the hypervisor's trace tick can print those lines
# before the run times out.
silent_guest_still_traced() {
    local out="$logs/silent.serial" rc=0
    scripts/run.sh --no-build --hv "$hv_elf" --kernel target/aarch64-unknown-none/release/guest.bin \
        --append "test=silent" --smp 2 --timeout 15 --no-shell --log "$out" || rc=$?
    echo "run.sh exit status: $rc (124 = timed out, as the guest never ends)"
    grep -a -E "cpu0 mark|cpu1 state" "$out"
    [[ $rc -eq 124 ]] && grep -a -q "cpu0 mark 0x51130001" "$out" &&
        grep -a -q "cpu1 state ON -> OFF (psci CPU_OFF)" "$out"
}
step silent-guest-still-traced silent_guest_still_traced
# Under the stress suite's load (step stress-suite-8cpu above: ~21 000 state
# lines within a minute) the trace tick keeps up: no ring overflows, so no
# "trace buffer full" line in that run's serial log (the harness keeps it as
# <suite>-smp<N>.log; the newest is that step's).
stress_trace_has_no_drops() {
    local serial
    serial=$(ls -t "${CARGO_TARGET_DIR:-target}"/harness-logs/*/stress-smp8.log 2>/dev/null | head -n1)
    [[ -n $serial ]] || { echo "no stress-smp8.log from the stress-suite-8cpu step"; return 1; }
    local states
    states=$(grep -a -c ' state ' "$serial")
    echo "$serial: $states state lines, $(grep -a -c 'trace buffer full' "$serial") drop lines"
    ((states > 1000)) && ! grep -a "trace buffer full" "$serial"
}
step stress-8cpu-trace-no-drops stress_trace_has_no_drops
# --- end of the trace block ---

# Linux scenarios: each one judged by its spec in the harness (PVTEST PASS,
# clean power-off, no hypervisor panic, the kernel's own CPU list lines).
for s in linux-boot-{1,2,4,8}cpu linux-{hotplug,kexec,kdump,poweroff,reboot,echo}-4cpu; do
    linux_step "$s"
done

# --- parkvisor's guest module on stock Debian Linux ---
# scripts/guest-module.sh must print the module's absolute path last. Every
# check below fails without the module's effect: stock kexec takes CPUs down
# one by one ("psci: CPUn killed" lines, no "FAST_STOP parked"); stock kdump
# cannot stop the masked spinner ("failed to stop secondary CPUs") and its
# vmcore lacks that CPU's note, which the capture kernel's check counts.
guest_module_path() {
    local ko
    ko=$(scripts/guest-module.sh | tail -n1)
    echo "module: $ko"
    [[ $ko == /* && -f $ko ]]
}
step guest-module guest_module_path
for smp in 4 8; do
    linux_step "linux-module-kexec-busy-${smp}cpu"  # every CPU busy; all back in the second kernel
    linux_step "linux-module-multikexec-${smp}cpu"  # three kexecs from CPUs 1, 2, 3 under a console flood
    linux_step "linux-module-crashspin-${smp}cpu"   # a CPU spinning with IRQs masked; notes checked in the capture kernel
done
linux_step linux-module-plain-qemu-4cpu # not parkvisor: the module says so and kexec stays stock
# --- end of the guest module block ---------------------------------------------

# --- icount at 2 vCPUs, the module's fallback, options -----
# Under QEMU -icount (one host thread running the vCPUs round-robin) the boot
# CPU's wait for the secondaries must hand its turn over (WFE, woken by the
# secondary's SEV); a YIELD spin kept CPU1 from ever running at -smp 2
# ("only 0 of 1 secondary CPUs came up"). The bench guest at 2 vCPUs needs
# CPU1: it starts it with CPU_ON and stops it with FAST_STOP (a few seconds).
icount_2cpu() {
    local out="$logs/icount-2cpu.serial"
    scripts/run.sh --no-build --hv "$hv_elf" --kernel target/aarch64-unknown-none/release/guest.bin \
        --append "test=bench reps=1 budget_ms=1000 methods=fast_stop" --smp 2 --mem 512M --icount \
        --timeout 120 --no-shell --log "$out" || return 1
    grep -a -E 'came up|cpu1 state|BENCH n=|GUEST DONE' "$out"
    ! grep -a -q 'secondary CPUs came up' "$out" &&
        grep -a -q 'cpu1 state ON -> OFF (fast-stop)' "$out" &&
        grep -a -q 'GUEST DONE bench passed=1 failed=0' "$out"
}
step icount-2cpu icount_2cpu
# fail_once=1 with no stop IPI: the module's FAST_STOP "fails" (status -6,
# nothing parked); it must say why, hand over to the stock hotplug teardown
# (three "psci: CPUn killed"), and the second kernel must bring every CPU online.
linux_step linux-module-fallback-4cpu
# A CPU spinning with interrupts masked under -icount at 2 vCPUs: the other
# CPU sleeps on a timer before the crash. With the spinner yielding on every
# pass, each YIELD ended its round-robin turn after two instructions and
# guest time (= instructions executed) crawled while the other CPU slept:
# about 100 s of host time per 0.2 s of sleep on an idle host, so the 1 s
# sleep outlasts the timeout (parkvisor_spin.c). Then the crash dump checks.
linux_step linux-module-crashspin-icount-2cpu
# Not a step: the console hazard without the module's precautions
# (console_guard=0) hangs a kexec only when the stop happens to park a CPU
# that holds the PL011 port lock, 2 of 3 kexecs in two trial runs; too
# flaky for CI. docs/linux-guest.md, "Without the console precautions".
# An option given without its value is named in a clear error (lib.sh
# need_value), not set -u's "unbound variable".
options_need_values() {
    local s out
    for s in scripts/run.sh scripts/bench.sh guest-tests/linux/run-scenarios.sh; do
        if out=$("$s" --smp 2>&1); then
            echo "$s --smp: exit 0"
            return 1
        fi
        echo "$s --smp: $out"
        [[ $out == *"error: --smp needs a value"* ]] || return 1
    done
}
step options-need-values options_need_values
# --- end of the icount and fallback block ---
# --- audit: guests with more than 4 GiB of RAM ---
# EL2's own map covers all guest RAM (docs/hostile-guest.md, RAM above 4 GiB): boot
# and pass psci, fast_stop and ram (SAVE_REGS into areas above 4 GiB) at 8
# vCPUs with 4 GiB and 16 GiB. The hostile suite runs in bare-metal-suites.
ram_4g_16g() {
    local m
    for m in 4G 16G; do
        cargo run --release -q -p harness -- --smp 8 --mem "$m" psci fast_stop ram || return 1
    done
}
step ram-4g-16g-8cpu ram_4g_16g
# --- end audit ---

# --- gicv2: the GICv2 board (QEMU virt gic-version=2), about 5.5 min ---------
# The same hypervisor image picks its GICv2 backend from the DTB. Bare-metal
# suites at 1, 2, 4, 8 vCPUs (GICv3-only tests skip, the harness knows how
# many); Linux boot at 8, hotplug, kdump, the guest module's kexec with every
# CPU busy and its kdump with a masked spinner, console echo; and the board's
# limits (more than 8 vCPUs, an unknown board name) refused.
gicv2_limits() {
    local out
    if out=$(scripts/run.sh --no-build --board virt-gicv2 --smp 9 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"at most 8 vCPUs"* ]] || return 1
    if out=$(scripts/run.sh --no-build --board nosuch 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"unknown board 'nosuch' (boards: "*"virt-gicv2"* ]] || return 1
    if out=$(cargo run --release -q -p harness -- --board virt-gicv2 --smp 16 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"at most 8 vCPUs"* ]]
}
step gicv2-limits gicv2_limits
step gicv2-bare-metal-suites cargo run --release -q -p harness -- --board virt-gicv2 --smp 1,2,4,8
grep -E '^harness: ' "$logs/test-gicv2-bare-metal-suites.log" || true
linux_step gicv2-linux-boot-8cpu
linux_step gicv2-linux-hotplug-4cpu
linux_step gicv2-linux-kdump-4cpu
# Stock kexec with every CPU busy: the CPU hotplug teardown through
# parkvisor's PSCI on GICv2, and all CPUs back in the second kernel.
linux_step gicv2-linux-kexec-busy-4cpu
linux_step gicv2-linux-module-kexec-busy-4cpu
linux_step gicv2-linux-module-crashspin-4cpu
linux_step gicv2-linux-echo-4cpu
# --- end gicv2 ---

# --- qemu10: QEMU >= 10, -icount with default options ---------------------------
# run.sh refuses a QEMU older than lib.sh's PV_QEMU_MIN; say which one runs.
qemu_version() {
    # shellcheck source=scripts/lib.sh
    (source scripts/lib.sh && pv_check_qemu && echo "QEMU $(pv_qemu_version)")
}
step qemu-version qemu_version
# Busy-waiting secondaries under -icount with the hypervisor's default options
# (trace tick on). QEMU 7.2's round robin starved the boot vCPU behind the
# tick from 4 vCPUs on; QEMU 8.1 made it fair. The bench guest's FAST_STOP
# and CPU_ON/CPU_OFF methods must finish at 4, 8 and 64 vCPUs.
icount_default() {
    local n=$1 out="$logs/icount-default-$1.serial"
    scripts/run.sh --no-build --hv "$hv_elf" --kernel target/aarch64-unknown-none/release/guest.bin \
        --append "test=bench reps=1 budget_ms=1000 methods=fast_stop,cpu_on_off" --smp "$n" --mem 512M \
        --icount --timeout 180 --no-shell --log "$out" || return 1
    grep -a -E 'BENCH n=|GUEST DONE|GUEST FAIL' "$out"
    grep -a -q "BENCH n=$n method=fast_stop" "$out" &&
        grep -a -q "BENCH n=$n method=cpu_on " "$out" &&
        grep -a -q 'GUEST DONE bench passed=2 failed=0' "$out"
}
step icount-default-4cpu icount_default 4
step icount-default-8cpu icount_default 8
step icount-default-64cpu icount_default 64
# Debian 13's guest ingredients through the private apt root (setup.sh linux
# --debian 13): kernel 6.12, busybox and kexec under /usr; the
# host's apt sources and dpkg architectures must not change.
debian13_fetch() {
    local before after d13
    host_apt_state() { cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | md5sum; dpkg --print-foreign-architectures; }
    before=$(host_apt_state)
    scripts/setup.sh linux --debian 13 || return 1
    after=$(host_apt_state)
    d13=$(source scripts/lib.sh && pv_linux_dir 13)
    cat "$d13/READY"
    [[ $before == "$after" ]] &&
        grep -q '^kernel=linux-image-6\.12\.' "$d13/READY" &&
        [[ -x $d13/sysroot/usr/bin/busybox && -x $d13/sysroot/usr/sbin/kexec ]]
}
step debian13-fetch debian13_fetch
# Debian 13's 6.12 under parkvisor to init and power-off (Debian 12's
# busybox in the mini initramfs). 6.12 advertises FEAT_MOPS and glibc's
# memcpy then uses it: without HCRX_EL2.MSCEn init died of SIGILL (panic=-1
# and --no-reboot make that a quick failure instead of a timeout).
linux_step debian13-boot-2cpu
# --- end qemu10 -------------------------------------------------------------------

# --- console input under load ---
# guest-tests/linux/console-load.sh: 300 lines typed in lock step into the
# Linux console while every CPU runs a busy loop and secondaries cycle
# through hotplug, the PL011 interrupt's affinity moved to the CPU going
# down and to the one coming up; the guest must read every line, in order
# (MD5 of all it read). At 4 and 8 vCPUs under parkvisor, and at 4 on
# plain QEMU as the baseline; under a minute each on an otherwise idle host.
# (The GIC and hypercall fuzzer is the fuzz suite's gic_and_calls test: it
# runs in bare-metal-suites and fast-stop-suites.)
linux_step linux-console-load-4cpu
linux_step linux-console-load-8cpu
linux_step linux-console-load-plain-qemu-4cpu
# --- end fuzz ---------------------------------------------------------------------

# --- module: the guest module's stop and crash paths ---
# checkpatch --strict on the guest modules (checkpatch.pl from Debian's
# linux-source-6.1, cached under .cache/checkpatch). Fetched through the
# private Debian 12 apt root: a Debian 13 host's apt has no linux-source-6.1
# and would read the name as a regex (linux-source-6.12).
module_checkpatch() {
    local dir="$PV_CACHE/checkpatch" cp
    cp="$dir/linux-source-6.1/scripts/checkpatch.pl"
    if [[ ! -f $cp ]]; then
        mkdir -p "$dir"
        (cd "$dir" && APT_CONFIG="$PV_CACHE/apt/bookworm/apt.conf" apt-get download linux-source-6.1 >&2) || return 1
        dpkg-deb --fsys-tarfile "$dir"/linux-source-6.1_*.deb | tar -x -O ./usr/src/linux-source-6.1.tar.xz |
            tar -xJ -C "$dir" --wildcards 'linux-source-6.1/scripts/checkpatch.pl' \
                'linux-source-6.1/scripts/spelling.txt' 'linux-source-6.1/scripts/const_structs.checkpatch' || return 1
        rm -f "$dir"/linux-source-6.1_*.deb
    fi
    perl "$cp" --strict --no-tree -f guest-tests/linux/module/*.[ch]
}
step guest-module-checkpatch module_checkpatch
# Three kexecs from CPUs 1, 2, 3 while every other CPU floods /dev/kmsg: the
# flooders own console_sem and print, so each kexec must either take it
# (then stop IPI, FAST_STOP for the rest) or go stock; no hang either way:
# the fourth kernel must come up with every CPU. The module's own lines are
# only shown: the flood can overrun the log buffer before they are printed
# (seen at 8 vCPUs): only shown.
# A CPU taking the UART's irq_desc lock in a loop (parkvisor_lock.ko) and
# one spinning masked: the crash IPI stops the first between two sections,
# FAST_STOP the spinner; machine_kexec_mask_interrupts() then takes that
# lock. The capture kernel checks N notes, the spinner's PC, every CPU in
# the crashed kernel's cpu_online_mask and the pids of the two threads.
# A partial stop: no stop IPI, and the first FAST_STOP gets a deadline too
# short for every vCPU to acknowledge (first_deadline_us, test only): the
# module must retry for those left running and not fall back to stock.
for smp in 4 8; do
    linux_step "linux-module-kmsgstorm-${smp}cpu"
    linux_step "linux-module-crashlock-${smp}cpu"
    linux_step "linux-module-partial-${smp}cpu"
done
# --- end module ---

# --- debian13: Debian 13's kernel 6.12, stock and with the guest module ---
# setup.sh linux --debian 13 fetches the kernel and, the first time,
# debootstraps the trixie build root its module needs (48-72 s, 816 MB, with a
# warm mirror); guest-module.sh RELEASE must print the 6.12 module's path
# last. Then, at 4 vCPUs: stock kexec, the module's kexec with every CPU
# busy, and the masked-spinner kdump, which only the module makes complete
# on 6.12 (stock: "failed to stop secondary CPUs", 3 notes of 4).
d13_release() { pv_kernel_release "$(pv_linux_dir 13)"; }
d13_module_path() {
    local rel ko
    scripts/setup.sh linux --debian 13 || return 1
    rel=$(d13_release)
    ko=$(scripts/guest-module.sh --no-setup "$rel" | tail -n1)
    echo "module for $rel: $ko"
    [[ $rel == *+deb13-arm64 && $ko == /* && -f $ko ]] &&
        aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout |
        tr '\0' '\n' | grep -qx "vermagic=$rel SMP mod_unload modversions aarch64"
}
step debian13-guest-module d13_module_path
linux_step debian13-linux-kexec-4cpu
linux_step debian13-linux-module-kexec-busy-4cpu
linux_step debian13-linux-module-crashspin-4cpu
# --- end debian13 ---

# --- park: trace order of CPU_OFF ---
# Under trace=calls the judge fails a run whose `psci CPU_OFF() = SUCCESS`
# line does not precede the `ON -> OFF (psci CPU_OFF)` line it caused (the
# answer belongs to the life that called, never after the next life's ON).
# Only psci: its DONE line is printed by CPU0 alone. In suites where one CPU
# polls while another prints it (demo, stress), call lines split the line.
step bare-metal-cpu-off-trace-order cargo run --release -q -p harness -- \
    --hv-args trace=calls --smp 2,4 psci
# --- end park ---

# --- overhead: console-baud= is a build feature (a few seconds) ---
# The wire model behind console-baud= is a benchmark aid, built only with the
# uart-model feature (the bench scripts and bare-metal-console-baud use it).
# A build without it must refuse the option with an error line (error level:
# it shows even with trace=off), not take it silently; the feature build must lint.
console_baud_without_feature() {
    local out="$logs/console-baud-no-feature.serial"
    scripts/run.sh --no-build --hv "$hv_elf" --kernel target/aarch64-unknown-none/release/guest.bin \
        --append "test=psci" --hv-args "console-baud=115200" --smp 1 --timeout 60 \
        --no-shell --log "$out" || return 1
    grep -a -E '^\[hv [0-9.]+\] cpu0 log ERROR console-baud=115200 ignored: .*--features uart-model' "$out"
}
step console-baud-without-feature console_baud_without_feature
step clippy-uart-model cargo clippy --release -p parkvisor --features uart-model \
    --target aarch64-unknown-none-softfloat -- -D warnings
# --- end overhead ---

# --- rpi4suite: raspi4b (QEMU's Raspberry Pi 4 B), about 5 min on an idle host ---
# The board's CPUs start through spin tables (no PSCI firmware): without
# parkvisor stock Linux refuses kexec; under parkvisor it gets PSCI and
# kexecs with all 4 CPUs back. Always 4 CPUs and 2 GiB. Bare-metal suites
# psci, fast_stop, ipi and isolation (aimed at the BCM2711's DMA masters and
# GIC-400 frames); Linux boot, random hotplug (soak, under -icount), kexec
# twice (stock, then the guest module's FAST_STOP, every CPU busy), a stock
# kexec issued from CPU 3 while the other CPUs flood the console, kdump, the
# module's kdump with a masked spinner; console echo; and the bare board's
# refusal.
rpi4_limits() { # only the board's 4 CPUs and 2 GiB, and no bare-board guests, said clearly
    local out
    if out=$(scripts/run.sh --no-build --board raspi4b --smp 2 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"exactly 4 CPUs"* ]] || return 1
    if out=$(scripts/run.sh --no-build --board raspi4b --mem 1G 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"exactly 2G of RAM"* ]] || return 1
    if out=$(cargo run --release -q -p harness -- --board raspi4b --smp 1,4 psci 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"exactly 4 CPUs"* ]] || return 1
    if out=$(cargo run --release -q -p harness -- --board raspi4b --plain psci 2>&1); then return 1; fi
    echo "$out"
    [[ $out == *"no PSCI firmware"* ]]
}
rpi4_bare_kexec_refused() { # the bare board: stock Linux cannot kexec
    local rc=0 rlog="$logs/rpi4-bare-kexec.serial"
    scripts/run.sh --no-build --board raspi4b --no-hv --scenario kexec --timeout 600 \
        --no-shell --log "$rlog" || rc=$?
    echo "run.sh exit status: $rc (5: the guest reported the failure)"
    grep -a -E "PVTEST|Can't kexec|smp: Brought up" "$rlog"
    [[ $rc == 5 ]] && grep -a -q 'smp: Brought up 1 node, 4 CPUs' "$rlog" &&
        grep -a -q 'PVTEST kexec stage=1 online=0-3' "$rlog" &&
        grep -a -q "Can't kexec: CPUs are stuck in the kernel." "$rlog" &&
        grep -a -q 'PVTEST FAIL kexec: kexec -l failed' "$rlog" &&
        ! grep -a -q 'PVTEST kexec second kernel' "$rlog"
}
step rpi4-limits rpi4_limits
step rpi4-bare-metal-suites cargo run --release -q -p harness -- --board raspi4b psci fast_stop ipi isolation
grep -E "^harness: " "$logs/test-rpi4-bare-metal-suites.log" 2>/dev/null || true
# Linux under parkvisor: judged by the harness's specs (guest-tests/harness/src/linux/steps.rs).
for s in rpi4-linux-{boot,soak,kexec-twice,kexec-from-cpu3,kdump,module-crashspin}; do
    linux_step "$s"
done
step rpi4-bare-kexec-refused rpi4_bare_kexec_refused
linux_step rpi4-linux-echo
# --- end rpi4suite ---

echo
echo "wall time: $(($(date +%s) - suite_start)) s"
if [[ $failed -gt 0 ]]; then
    echo "failed steps: ${failed_steps[*]}"
fi
echo "test.sh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
