# shellcheck shell=bash
# Shared helpers for parkvisor's shell scripts. Source it; do not run it.
# Sets PV_ROOT (repo root), PV_CACHE (download/build cache) and loads the
# board's KEY=VALUE facts (boards/$PV_BOARD/board.env, default qemu-virt).

PV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PV_CACHE="${PV_CACHE:-$PV_ROOT/.cache}"
PV_BOARD="${PV_BOARD:-qemu-virt}"
# The Debian release whose arm64 packages make the Linux guest: 12 (bookworm,
# kernel 6.1, the default) or 13 (trixie, kernel 6.12). run.sh/setup.sh
# --debian N set it; exported, so the scripts they start follow.
PV_DEBIAN="${PV_DEBIAN:-12}"

# pv_debian_codename N: the codename of Debian release N (12 -> bookworm).
# The host's Debian codename (bookworm, trixie, ...; empty when unknown).
pv_host_codename() {
    (
        # shellcheck disable=SC1091
        . /etc/os-release && echo "${VERSION_CODENAME:-}"
    )
}

# Whether guest modules for Debian release $1 (12, 13) build with the host's
# own cross compiler and kbuild: only Debian 12's on a Debian 12 host (its
# kernel Makefile names gcc-12, and linux-kbuild-6.1 is Debian 12's). Any
# other pairing builds them in a build root of the guest's release
# (scripts/guest-module.sh RELEASE).
pv_host_builds_modules() {
    [[ $1 == 12 && $(pv_host_codename) == bookworm ]]
}

pv_debian_codename() {
    case "$1" in
    12) echo bookworm ;;
    13) echo trixie ;;
    *) return 1 ;;
    esac
}

# pv_linux_dir [N]: where Debian N's guest ingredients live (default
# $PV_DEBIAN): Image, READY, sysroot/ (busybox, kexec and its libraries),
# headers/, kernel/, the initramfs images and the guest module. Debian 12 keeps
# .cache/linux; any other release is .cache/linux-<codename> with the same
# layout inside.
pv_linux_dir() {
    local n="${1:-$PV_DEBIAN}" code
    code=$(pv_debian_codename "$n") || die "unknown Debian release '$n' (expected 12 or 13)"
    if [[ $n == 12 ]]; then echo "$PV_CACHE/linux"; else echo "$PV_CACHE/linux-$code"; fi
}

# pv_kernel_release [DIR]: the release of the guest kernel cached in DIR
# (default $PV_LINUX), e.g. 6.1.0-57-arm64, from its READY file; empty when
# none is cached.
pv_kernel_release() {
    sed -n 's/^kernel=linux-image-\([^ ]*\) .*/\1/p' "${1:-$PV_LINUX}/READY" 2>/dev/null || true
}

# pv_set_debian N: switch this script (and what it starts) to Debian N's guest.
pv_set_debian() {
    pv_debian_codename "$1" >/dev/null || die "unknown Debian release '$1' (expected 12 or 13)"
    export PV_DEBIAN="$1"
    # shellcheck disable=SC2034
    PV_LINUX=$(pv_linux_dir "$1")
}

pv_prog="$(basename "$0")"

die() {
    echo "$pv_prog: error: $*" >&2
    exit 1
}

# Progress line (to stderr, so stdout stays the guest's serial output).
note() {
    echo "$pv_prog: $*" >&2
}

# need_value OPTION ARGC: in an option loop, `--opt) need_value "$1" "$#"; v=$2;
# shift 2`: dies with "OPTION needs a value" when the option is the last word
# (instead of set -u's "$2: unbound variable").
need_value() {
    [[ $2 -ge 2 ]] || die "$1 needs a value (see --help)"
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found${2:+ ($2)}"
}

pv_load_board() {
    local env="$PV_ROOT/boards/$PV_BOARD/board.env"
    [[ -f $env ]] || die "no board file $env"
    unset HV_BOOT DEMO_BARE_FIRST MAX_SMP FIXED_SMP FIXED_MEM BARE_POWEROFF ALWAYS_NO_REBOOT DTB_FROM_KERNEL DTB_EXTRA_MEMORY_BASE DTB_EXTRA_MEMORY_SIZE GUEST_CONSOLE
    # shellcheck disable=SC1090
    source "$env"
}

# Board names (run.sh --board, harness --board) name boards/qemu-<name>:
# virt = boards/qemu-virt (GICv3, the default), virt-gicv2 =
# boards/qemu-virt-gicv2 (GICv2).
pv_board_names() {
    local d names=""
    for d in "$PV_ROOT"/boards/qemu-*/board.env; do
        d="${d%/board.env}"
        names+=" ${d##*/qemu-}"
    done
    echo "${names# }"
}

# pv_select_board NAME: load that board's facts (dies listing the names).
pv_select_board() {
    [[ $1 =~ ^[a-z0-9-]+$ && -f $PV_ROOT/boards/qemu-$1/board.env ]] ||
        die "unknown board '$1' (boards: $(pv_board_names))"
    PV_BOARD="qemu-$1"
    pv_load_board
}

# pv_board_dtb [LINUX_DIR]: the firmware DTB of a board whose board.env names
# DTB_FROM_KERNEL (a DTB of the guest kernel package, e.g. raspi4b's
# broadcom/bcm2711-rpi-4-b.dtb), for QEMU's -dtb: prints its path (nothing
# for a board where QEMU makes the device tree). Made once per kernel and
# board, in LINUX_DIR (default $PV_LINUX): the package's DTB (extracted
# from the cached .deb when missing), then every node listed in the board's
# dt-disable gets status = "disabled", and DTB_EXTRA_MEMORY_BASE/SIZE (if
# set) add a memory node (/ram@BASE). The board's files say what and why, not the
# hypervisor.
pv_board_dtb() {
    [[ -n ${DTB_FROM_KERNEL:-} ]] || return 0
    local ldir="${1:-$PV_LINUX}" kver deb src out tmp node disable
    need_cmd fdtput "device-tree-compiler"
    kver=$(pv_kernel_release "$ldir")
    [[ -n $kver ]] || die "no guest kernel in $ldir (run scripts/setup.sh linux)"
    src="$ldir/kernel/usr/lib/linux-image-$kver/$DTB_FROM_KERNEL"
    if [[ ! -f $src ]]; then
        deb=$(sed -n 's/^kernel=[^ ]* \(.*\)$/\1/p' "$ldir/READY")
        for deb in "$ldir/debs/$deb" "$PV_CACHE/debs/$deb"; do [[ -f $deb ]] && break; done
        [[ -f $deb ]] || die "the guest kernel's package is not cached (run scripts/setup.sh linux)"
        note "extracting $DTB_FROM_KERNEL from $(basename "$deb")"
        tmp=$(mktemp -d "$ldir/.dtb.XXXXXX")
        # Stops reading the package at the file (as setup.sh does for the Image).
        dpkg-deb --fsys-tarfile "$deb" 2>/dev/null |
            tar -x -C "$tmp" --occurrence=1 "./usr/lib/linux-image-$kver/$DTB_FROM_KERNEL" || true
        [[ -f $tmp/usr/lib/linux-image-$kver/$DTB_FROM_KERNEL ]] ||
            { rm -rf "$tmp"; die "no $DTB_FROM_KERNEL in $(basename "$deb")"; }
        mkdir -p "$(dirname "$src")"
        mv "$tmp/usr/lib/linux-image-$kver/$DTB_FROM_KERNEL" "$src"
        rm -rf "$tmp"
    fi
    disable="$PV_ROOT/boards/$PV_BOARD/dt-disable"
    out="$ldir/board-dtb/$PV_BOARD.dtb"
    if [[ ! -f $out || $src -nt $out || $disable -nt $out || $PV_ROOT/boards/$PV_BOARD/board.env -nt $out ]]; then
        mkdir -p "$ldir/board-dtb"
        tmp=$(mktemp "$ldir/board-dtb/.$PV_BOARD.XXXXXX")
        cp "$src" "$tmp"
        if [[ -f $disable ]]; then
            while read -r node; do
                [[ -z $node || $node == \#* ]] && continue
                fdtput -t s "$tmp" "$node" status disabled ||
                    { rm -f "$tmp"; die "$disable: cannot disable $node in $DTB_FROM_KERNEL"; }
            done <"$disable"
        fi
        if [[ -n ${DTB_EXTRA_MEMORY_BASE:-} ]]; then
            # A root with #address-cells = 2 and #size-cells = 1 (BCM2711's).
            [[ $(fdtget "$tmp" / '#address-cells') == 2 && $(fdtget "$tmp" / '#size-cells') == 1 ]] ||
                { rm -f "$tmp"; die "$DTB_FROM_KERNEL: expected #address-cells 2, #size-cells 1 at /"; }
            # Not named memory@...: QEMU replaces every /memory* node with its
            # own (0..0x3c000000 on raspi4b). Linux and parkvisor take any
            # node with device_type = "memory".
            node="/ram@$(printf %x "$DTB_EXTRA_MEMORY_BASE")"
            if ! { fdtput -c "$tmp" "$node" &&
                fdtput -t s "$tmp" "$node" device_type memory &&
                fdtput -t x "$tmp" "$node" reg 0 "$DTB_EXTRA_MEMORY_BASE" "$DTB_EXTRA_MEMORY_SIZE"; }; then
                rm -f "$tmp"
                die "cannot add $node to $DTB_FROM_KERNEL"
            fi
        fi
        chmod 644 "$tmp"
        mv -f "$tmp" "$out"
    fi
    echo "$out"
}

# Seconds since the epoch with milliseconds, for timing steps.
now_ms() {
    date +%s%3N
}

# Convert a QEMU-style size (512M, 2G, 1024) to bytes; plain numbers are MiB as
# in QEMU's -m.
size_to_bytes() {
    local s="$1" n unit
    n="${s%[KkMmGgTt]}"
    unit="${s#"$n"}"
    [[ $n =~ ^[0-9]+$ ]] || die "bad size '$s'"
    case "$unit" in
    K | k) echo $((n << 10)) ;;
    M | m | "") echo $((n << 20)) ;;
    G | g) echo $((n << 30)) ;;
    T | t) echo $((n << 40)) ;;
    esac
}

# The oldest QEMU the project runs on: 8.1 fixed -icount's round robin
# (the hypervisor's trace tick starved the boot vCPU under 7.2), and the
# raspi4b board needs 9.0. setup.sh installs 10.0 (Debian 13, or Debian 12's
# bookworm-backports).
PV_QEMU_MIN=10.0

# pv_qemu_version [BIN]: "MAJOR.MINOR.PATCH" of QEMU (empty when missing).
pv_qemu_version() {
    # Empty, not a failure, when QEMU is missing: callers run under set -e
    # and pipefail, and a missing QEMU is what setup.sh then installs.
    { "${1:-${QEMU_BIN:-qemu-system-aarch64}}" --version 2>/dev/null || true; } |
        sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' | head -n1
}

# pv_version_ge A B: version A >= version B (dotted numbers).
pv_version_ge() {
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]
}

# pv_check_qemu: die unless the board's QEMU is there and >= PV_QEMU_MIN.
pv_check_qemu() {
    local v
    v=$(pv_qemu_version "$QEMU_BIN")
    [[ -n $v ]] || die "'$QEMU_BIN' not found or not runnable: run scripts/setup.sh"
    pv_version_ge "$v" "$PV_QEMU_MIN" ||
        die "$(command -v "$QEMU_BIN") is QEMU $v; parkvisor needs QEMU >= $PV_QEMU_MIN (scripts/setup.sh installs it)"
}

pv_load_board
# shellcheck disable=SC2034
PV_LINUX=$(pv_linux_dir "$PV_DEBIAN")
